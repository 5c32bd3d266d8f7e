"""kubectl ome-pvc: serve OME model weights from a PersistentVolumeClaim."""

__version__ = "0.1.0"
