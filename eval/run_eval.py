"""Run the evaluation without the `qa` entry point: ``python eval/run_eval.py --gold ...``.

Same options and code as ``qa eval`` (qa/eval/cli.py); kept for CI scripts and notebooks.
"""

from qa.eval.cli import eval_command

if __name__ == "__main__":
    eval_command(prog_name="run_eval.py")
