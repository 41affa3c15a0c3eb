"""`python -m exprgrad` runs the command line."""

from exprgrad.cli import cli

if __name__ == "__main__":
    cli()
