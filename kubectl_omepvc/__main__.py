"""`python -m kubectl_omepvc` runs the plugin."""

from kubectl_omepvc import cli

if __name__ == "__main__":
    cli.main()
