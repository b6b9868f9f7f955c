"""The project's own NAB scorer, written from the rules in spec §3.2 (no NAB code).

Per file: rows in the probationary period (first min(floor(0.15 n), 750)) are ignored; each row
gets a weighted value if detected: inside a window, the scaled sigmoid of its position relative
to the window end (only the earliest detection per window counts); outside, a false positive
weighted by its distance past the previous window (full cost before the first window). Each
profile's threshold is an oracle: one threshold for the whole corpus, found by sweeping the
distinct scores in descending order. Scores are normalised with S_null (all windows missed) and
S_perfect (every window hit at its start).
"""

import json
import math
import os

NAB_DIR = os.environ.get("NAB_DIR", "/work/shared/data/nab")


def scaled_sigmoid(y):
    if y > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def load_windows(nab_dir=NAB_DIR):
    with open(os.path.join(nab_dir, "labels", "combined_windows.json")) as f:
        raw = json.load(f)
    return {name: [(a[:19], b[:19]) for a, b in wins] for name, wins in raw.items()}


def load_profiles(nab_dir=NAB_DIR):
    with open(os.path.join(nab_dir, "config", "profiles.json")) as f:
        raw = json.load(f)
    return {name: (p["CostMatrix"]["tpWeight"], p["CostMatrix"]["fnWeight"], p["CostMatrix"]["fpWeight"])
            for name, p in raw.items()}


def probation_length(n):
    return min(math.floor(0.15 * n), 750)


def _first_index(timestamps, t):
    """Index of the first row at or after timestamp t (timestamps are sorted strings)."""
    lo, hi = 0, len(timestamps)
    while lo < hi:
        mid = (lo + hi) // 2
        if timestamps[mid] < t:
            lo = mid + 1
        else:
            hi = mid
    return lo


def label_rows(timestamps, windows):
    """Per scorable row: (row index, window id or None, relative position y for the sigmoid).

    Inside window w: y = -(right - i + 1)/width (−1 at the window start). Outside: y = distance
    past the previous window's end over (width − 1), or +inf (full cost) before the first window.
    """
    ts = [t[:19] for t in timestamps]
    spans = []
    for a, b in windows:
        left = _first_index(ts, a)
        right = _first_index(ts, b)
        if right >= len(ts) or ts[right] != b:
            right -= 1
        spans.append((left, right))
    out = []
    start = probation_length(len(ts))
    w = -1
    for i in range(len(ts)):
        while w + 1 < len(spans) and i >= spans[w + 1][0]:
            w += 1
        if i < start:
            continue
        if w >= 0 and i <= spans[w][1]:
            left, right = spans[w]
            width = right - left + 1
            out.append((i, w, -(right - i + 1) / width))
        elif w >= 0:
            left, right = spans[w]
            width = right - left + 1
            out.append((i, None, abs(right - i) / max(width - 1, 1)))
        else:
            out.append((i, None, math.inf))
    return out


def _points(rows_by_file, windows):
    """All scorable rows of the corpus as (score, window key or None, sigmoid value)."""
    points = []
    n_windows = 0
    for name, (timestamps, scores) in rows_by_file.items():
        wins = windows.get(name, [])
        n_windows += len(wins)
        for i, w, y in label_rows(timestamps, wins):
            points.append((scores[i], None if w is None else (name, w), scaled_sigmoid(y)))
    return points, n_windows


def sweep(points, n_windows, profile):
    """Best raw score over thresholds: returns (score, threshold, windows hit, FP rows)."""
    tp_w, fn_w, fp_w = profile
    max_tp = scaled_sigmoid(-1.0)
    points = sorted(points, key=lambda p: -p[0])
    best = (-n_windows * fn_w, math.inf, 0, 0)  # threshold above every score: nothing detected
    tp_best = {}  # window -> best (earliest) TP value so far
    tp_sum = fp_sum = 0.0
    fp_rows = 0
    for k, (score, win, sig) in enumerate(points):
        if win is None:
            fp_sum += fp_w * sig
            fp_rows += 1
        else:
            value = tp_w * sig / max_tp
            old = tp_best.get(win)
            if old is None:
                tp_best[win] = value
                tp_sum += value
            elif value > old:
                tp_best[win] = value
                tp_sum += value - old
        if k + 1 == len(points) or points[k + 1][0] != score:
            total = tp_sum + fp_sum - (n_windows - len(tp_best)) * fn_w
            if total > best[0]:
                best = (total, score, len(tp_best), fp_rows)
    return best


def normalise(raw, n_windows, profile):
    tp_w, fn_w, _ = profile
    perfect, null = n_windows * tp_w, -n_windows * fn_w
    return 100.0 * (raw - null) / (perfect - null)


def score_corpus(rows_by_file, nab_dir=NAB_DIR, details=False):
    """rows_by_file: {"category/file.csv": (timestamps, scores)} → {profile: normalised score}.

    With details=True each profile maps to a dict with score, threshold, windows hit, FP rows.
    """
    windows = load_windows(nab_dir)
    points, n_windows = _points(rows_by_file, windows)
    out = {}
    for name, profile in load_profiles(nab_dir).items():
        raw, threshold, hit, fp_rows = sweep(points, n_windows, profile)
        score = normalise(raw, n_windows, profile)
        out[name] = {"score": score, "threshold": threshold, "hit": hit, "windows": n_windows,
                     "fp_rows": fp_rows} if details else score
    return out


def score_at(rows_by_file, threshold, profile, nab_dir=NAB_DIR):
    """(raw score, windows, windows hit, FP rows) of the given files at a fixed threshold."""
    tp_w, fn_w, fp_w = profile
    points, n_windows = _points(rows_by_file, load_windows(nab_dir))
    max_tp = scaled_sigmoid(-1.0)
    best, fp, fp_rows = {}, 0.0, 0
    for score, win, sig in points:
        if score < threshold:
            continue
        if win is None:
            fp += fp_w * sig
            fp_rows += 1
        else:
            best[win] = max(best.get(win, -math.inf), tp_w * sig / max_tp)
    raw = sum(best.values()) + fp - (n_windows - len(best)) * fn_w
    return raw, n_windows, len(best), fp_rows


def by_category(rows_by_file, thresholds, nab_dir=NAB_DIR):
    """Per category and profile, at the corpus thresholds: (normalised score or None when the
    category has no windows, windows hit, windows, FP rows)."""
    profiles = load_profiles(nab_dir)
    cats = {}
    for name in rows_by_file:
        cats.setdefault(name.split("/")[0], {})[name] = rows_by_file[name]
    out = {}
    for cat, files in sorted(cats.items()):
        out[cat] = {}
        for pname, profile in profiles.items():
            raw, n, hit, fp_rows = score_at(files, thresholds[pname], profile, nab_dir)
            out[cat][pname] = (normalise(raw, n, profile) if n else None, hit, n, fp_rows)
    return out


def load_corpus(nab_dir=NAB_DIR):
    """{"category/file.csv": [timestamps]} of every data file, in a stable order."""
    data = os.path.join(nab_dir, "data")
    out = {}
    for cat in sorted(os.listdir(data)):
        folder = os.path.join(data, cat)
        if not os.path.isdir(folder):
            continue
        for fname in sorted(os.listdir(folder)):
            if fname.endswith(".csv"):
                with open(os.path.join(folder, fname)) as f:
                    next(f)
                    out[f"{cat}/{fname}"] = [line.split(",")[0] for line in f if line.strip()]
    return out
