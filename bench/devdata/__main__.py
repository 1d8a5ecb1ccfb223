"""`python -m bench.devdata OUT_DIR [--korquad-sample 200] [--seed 0]`: write both development sets."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from bench.common import KORQUAD
from bench.devdata.generate import generate_enterprise, generate_korquad_pdf


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.devdata", description=__doc__)
    parser.add_argument("out", type=Path, help="folder to write into (created; not for committing)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--korquad-sample", type=int, default=200, help="KorQuAD dev paragraphs (0: skip)")
    parser.add_argument("--korquad-per-file", type=int, default=1, help="paragraphs per PDF")
    parser.add_argument("--korquad", type=Path, default=KORQUAD, help="KorQuAD_v1.0_dev.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    generate_enterprise(args.out, seed=args.seed)
    if args.korquad_sample > 0:
        generate_korquad_pdf(args.out, args.korquad, args.korquad_sample, args.seed, args.korquad_per_file)


if __name__ == "__main__":
    main()
