"""Model-level NAB evaluation: runs examples/nab_model.rs over the corpus and scores its per-row
scores with the project's scorer (eval/nab/scorer.py).

Prints, for the initial_record_score path (normalised/100) and the −log10(p) variant: the three
profiles on all files and on the odd/even-indexed halves (tune on odd), windows hit and FP rows,
a per-category table, and fixed (non-oracle) thresholds record_score ≥ 50 / ≥ 75. The last line
is the JSON of the normalised path on all files.
"""

import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scorer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")


def run_model(nab_dir):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "scores.tsv")
        subprocess.run(["cargo", "run", "--release", "-q", "--example", "nab_model", "--",
                        os.path.join(nab_dir, "data"), out], cwd=ROOT, check=True)
        norm, log = {}, {}
        with open(out) as f:
            for line in f:
                name, a, b = line.rstrip("\n").split("\t")
                norm[name] = [float(x) for x in a.split(",")]
                log[name] = [float(x) for x in b.split(",")]
    return norm, log


def fmt(result):
    return " / ".join(f"{result[p]['score']:6.2f}" for p in PROFILES)


def report(label, rows):
    names = sorted(rows)
    full = scorer.score_corpus(rows, details=True)
    odd = scorer.score_corpus({n: rows[n] for n in names[1::2]}, details=True)
    even = scorer.score_corpus({n: rows[n] for n in names[0::2]}, details=True)
    std = full["standard"]
    print(f"== {label}: all {fmt(full)}   odd {fmt(odd)}   even {fmt(even)}")
    print(f"   standard threshold {std['threshold']:.6g}: {std['hit']}/{std['windows']} windows, "
          f"{std['fp_rows']} FP rows")
    thresholds = {p: full[p]["threshold"] for p in PROFILES}
    cats = scorer.by_category(rows, thresholds)
    print(f"   {'category':24s} {'standard':>9s} {'low_FP':>9s} {'low_FN':>9s}  hit/windows  FP rows")
    for cat, res in cats.items():
        cells = " ".join("      n/a" if res[p][0] is None else f"{res[p][0]:9.2f}" for p in PROFILES)
        _, hit, n, fp = res["standard"]
        print(f"   {cat:24s} {cells}  {hit:3d}/{n:<3d}      {fp}")
    return {p: round(full[p]["score"], 2) for p in PROFILES}


def fixed_thresholds(rows):
    profiles = scorer.load_profiles()
    for t in (0.5, 0.75):
        parts = []
        for p in PROFILES:
            raw, n, hit, fp = scorer.score_at(rows, t, profiles[p])
            parts.append(f"{scorer.normalise(raw, n, profiles[p]):6.2f}")
        print(f"   fixed record_score >= {int(t * 100)}: {' / '.join(parts)}  ({hit}/{n} windows, {fp} FP rows)")


def main():
    nab_dir = scorer.NAB_DIR
    corpus = scorer.load_corpus(nab_dir)
    norm, log = run_model(nab_dir)
    norm_rows = {n: (corpus[n], norm[n]) for n in corpus}
    log_rows = {n: (corpus[n], log[n]) for n in corpus}
    log_result = report("-log10(p) variant", log_rows)
    print("log variant:", json.dumps(log_result))
    result = report("initial_record_score/100", norm_rows)
    fixed_thresholds(norm_rows)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
