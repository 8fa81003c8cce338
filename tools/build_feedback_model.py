"""Train the feedback model churn_nb ships (churn_nb/text/classifier/): category from the project's labelled examples,
sentiment from their complaints and praise together with VADER's human-rated sentences (MIT licence, not shipped).

    python tools/build_feedback_model.py --vader ../shared/data/text/vader_ground_truth --out churn_nb/text/classifier

Prints the held-out figures and stores them with the model (`metrics` in model.json)."""

import argparse
from pathlib import Path
import pandas as pd
from churn_nb.text.classify import category_report, examples_path, save_feedback_model, train_feedback_model

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


def main():
    "Train, report on the held-out examples, save."
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vader", type=Path, required=True, help="folder of VADER's *_GroundTruth.txt files")
    parser.add_argument("--out", type=Path, default=Path("churn_nb/text/classifier"))
    args = parser.parse_args()
    rated = read_vader(args.vader)
    model = train_feedback_model(pd.read_csv(examples_path("train")), rated[["text", "score"]])
    report = category_report(model, pd.read_csv(examples_path("heldout")))
    model.metrics = {"heldout": {k: v for k, v in report.items() if k != "confusion"}}
    model.notes.append(f"VADER sets: {', '.join(VADER_SETS)} ({len(rated):,} sentences, MIT licence)")
    print(model.notes, model.metrics, report["confusion"], sep="\n")
    save_feedback_model(model, args.out)
    print("saved", args.out, sum(f.stat().st_size for f in args.out.iterdir()) // 1024, "KiB")


if __name__ == "__main__":
    main()
