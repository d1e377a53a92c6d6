"""`python -m training.task`: train on train/, evaluate on test/ (or eval/), export to --output."""

from __future__ import annotations

from pathlib import Path

from training.cli import config_from, run_command, training_parser
from training.dataset import evaluation_split, load_split, training_split
from training.pipeline import train_and_export


def main() -> None:
    parser = training_parser(__doc__ or "", default_output=Path("output"))
    args = parser.parse_args()
    train_path, test_path = training_split(args.data_dir), evaluation_split(args.data_dir)
    train_and_export(
        config_from(args),
        load_split(train_path, skip_bad=args.skip_bad_files),
        args.output,
        trained_on=str(train_path),
        eval_data=load_split(test_path, skip_bad=args.skip_bad_files),
        evaluated_on=str(test_path),
    )


if __name__ == "__main__":
    run_command(main)
