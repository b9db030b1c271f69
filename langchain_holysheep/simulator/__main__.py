"""`python -m langchain_holysheep.simulator`: serve the simulator until Ctrl-C."""

from langchain_holysheep.simulator.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
