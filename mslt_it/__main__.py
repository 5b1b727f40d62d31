"""``python -m mslt_it`` (what ``accelerate launch -m mslt_it train …`` runs)."""

from mslt_it.cli import main

if __name__ == "__main__":
    main()
