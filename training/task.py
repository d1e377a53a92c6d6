"""`python -m training.task`: train on the training photos, evaluate on the test photos, export
to --output. The test photos are the data's own test/ (or eval/); a folder of class folders
without one is split here, seeded (a fifth of each class to test), and the split is recorded
in the model folder (split.json)."""

from __future__ import annotations

from pathlib import Path

from training.cli import (
    about_model,
    config_from,
    output_folder,
    read_training_data,
    run_command,
    training_parser,
    write_split,
)
from training.pipeline import train_and_export


def main() -> None:
    parser = training_parser(__doc__ or "", default_output=Path("output"))
    args = parser.parse_args()
    config = config_from(args)
    data = read_training_data(args, split_off_test=True)
    assert data.test is not None  # split off when the data has no test/ of its own
    test_name = "the seeded split's test photos" if data.plan.split else "the test photos"
    with output_folder(args.output, args.next_version) as output:
        train_and_export(
            config,
            data.train,
            output,
            trained_on=data.trained_on,
            eval_data=data.test,
            evaluated_on=f"{test_name} of {data.trained_on}",
            about=about_model(args, data),
        )
        write_split(output, data.plan)


if __name__ == "__main__":
    run_command(main)
