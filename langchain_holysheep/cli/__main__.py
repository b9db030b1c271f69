"""`python -m langchain_holysheep.cli`: the `holysheep` command."""

from langchain_holysheep.cli import main

if __name__ == "__main__":
    main()
