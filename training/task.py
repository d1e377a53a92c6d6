"""`python -m training.task`: train on train/, evaluate on test/ (or eval/), export to --output."""

from __future__ import annotations

from pathlib import Path

from service.storage import fetch_folder, join
from training.cli import config_from, output_folder, run_command, training_parser
from training.dataset import evaluation_split, load_split, training_split
from training.pipeline import train_and_export


def main() -> None:
    parser = training_parser(__doc__ or "", default_output=Path("output"))
    args = parser.parse_args()
    data_dir = fetch_folder(args.data_dir)  # a gs:// folder is copied down once
    train_path, test_path = training_split(data_dir), evaluation_split(data_dir)
    # Reports name the folders as given (a bucket, not its temporary copy).
    train_name, test_name = (join(args.data_dir, path.name) for path in (train_path, test_path))
    with output_folder(args.output) as output:
        train_and_export(
            config_from(args),
            load_split(train_path, skip_bad=args.skip_bad_files),
            output,
            trained_on=train_name,
            eval_data=load_split(test_path, skip_bad=args.skip_bad_files),
            evaluated_on=test_name,
        )


if __name__ == "__main__":
    run_command(main)
