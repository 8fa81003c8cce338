"""Train the feedback model churn_nb ships (churn_nb/text/classifier/): category from the project's labelled examples,
sentiment from their complaints and praise together with VADER's human-rated sentences (MIT licence, shipped as
churn_nb/text/data/vader_ratings.csv.gz; `--vader` rebuilds that file from VADER's published ground truth).

    python tools/build_feedback_model.py [--vader ../shared/data/text/vader_ground_truth] --out churn_nb/text/classifier

Prints the held-out figures and stores them with the model (`metrics` in model.json)."""

import argparse
from pathlib import Path
import pandas as pd
from churn_nb.text.classify import (
    category_report,
    examples_path,
    rated_sentences,
    save_feedback_model,
    train_feedback_model,
)
from churn_nb.text.embed import static_folder

VADER_SETS = ["tweets", "amazonReviewSnippets", "movieReviewSnippets", "nytEditorialSnippets"]


def read_vader(folder: Path) -> pd.DataFrame:
    "VADER's ground truth (id, mean rating −4…4, text per line) as text and score from −1 to 1."
    rows = []
    for name in VADER_SETS:
        for line in (folder / f"{name}_GroundTruth.txt").read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split("\t")
            if len(parts) >= 3 and parts[2].strip():
                rows.append({"text": parts[2].strip(), "score": float(parts[1]) / 4, "set": name})
    return pd.DataFrame(rows)


def ship_vader(folder: Path) -> Path:
    "Write VADER's ratings as the package's gzipped CSV (byte-identical for the same input)."
    path = static_folder().parent / "data" / "vader_ratings.csv.gz"
    read_vader(folder).to_csv(path, index=False, compression={"method": "gzip", "mtime": 0})
    return path


def main():
    "Train, report on the held-out examples, save."
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--vader", type=Path, help="folder of VADER's *_GroundTruth.txt files (rebuilds the shipped ratings)"
    )
    parser.add_argument("--out", type=Path, default=Path("churn_nb/text/classifier"))
    args = parser.parse_args()
    if args.vader:
        print("wrote", ship_vader(args.vader))
    rated = rated_sentences()
    model = train_feedback_model(pd.read_csv(examples_path("train")), rated[["text", "score"]])
    report = category_report(model, pd.read_csv(examples_path("heldout")))
    model.metrics = {"heldout": {k: v for k, v in report.items() if k != "confusion"}}
    model.notes.append(f"VADER sets: {', '.join(VADER_SETS)} ({len(rated):,} sentences, MIT licence)")
    print(model.notes, model.metrics, report["confusion"], sep="\n")
    save_feedback_model(model, args.out)
    print("saved", args.out, sum(f.stat().st_size for f in args.out.iterdir()) // 1024, "KiB")


if __name__ == "__main__":
    main()
