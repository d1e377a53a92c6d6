"""`python -m training.full`: train on train/ + test/ and export the model the service ships.

Overwrites the bundled default (models/mugs) unless --export-dir names another folder.
"""

from __future__ import annotations

from service.runtime import DEFAULT_MODEL_DIR
from training.cli import config_from, run_command, training_parser
from training.dataset import LabelledImages, evaluation_split, load_split, training_split
from training.pipeline import train_and_export


def main() -> None:
    parser = training_parser(__doc__ or "", default_output=DEFAULT_MODEL_DIR)
    args = parser.parse_args()
    splits = [training_split(args.data_dir), evaluation_split(args.data_dir)]
    data = LabelledImages.concatenate(
        [load_split(path, skip_bad=args.skip_bad_files) for path in splits]
    )
    train_and_export(config_from(args), data, args.output, trained_on=" + ".join(map(str, splits)))


if __name__ == "__main__":
    run_command(main)
