"""glibc malloc settings for streaming large bodies, applied once when the server starts.

aiohttp hands a body over as a new `bytes` per piece received (about 256 KB; uvloop and the HTTP
parser each copy it). With glibc's defaults those pieces come and go at the top of the heap: a
free often returns the top to the kernel (trim) and the next piece faults the same pages back
in, zero-filled. On 100 MB bodies that was about a quarter of the server's CPU, more than the
kernel's socket copies. A fixed mmap threshold above the piece size keeps pieces on the heap,
and a trim threshold of 64 MiB keeps up to that much freed heap mapped for the next pieces
instead of handing it back at once.

Only on Linux with glibc, and not when the operator tunes malloc through the environment.

The price is memory kept after a job closes: its models are many allocations spread over the
heap and the worker threads' arenas, and the trim threshold returns only free memory at the top
of the main heap. So a closed or deleted job's memory, when large, is handed back explicitly
(`release`, glibc's `malloc_trim`), whoever tuned malloc.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from typing import Any

#: mallopt parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 4 << 20
TRIM_THRESHOLD = 64 << 20
#: A closed job's models worth a `release`: below this the memory is simply reused.
RELEASE_MIN_BYTES = 16 << 20

#: Environment through which an operator tunes glibc malloc: their choice wins.
OPERATOR_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")


def operator_tuned() -> bool:
    return any(name in os.environ for name in OPERATOR_SETTINGS) or "malloc" in os.environ.get("GLIBC_TUNABLES", "")


def tune() -> bool:
    """Apply the settings; False where they do not apply (not glibc, or tuned by the operator)."""
    if not sys.platform.startswith("linux") or operator_tuned():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # Both, even if one is refused (e.g. a 32-bit glibc caps the mmap threshold lower).
    mmap_ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    trim_ok = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    return bool(mmap_ok and trim_ok)


def release() -> bool:
    """Hand the free pages of every arena back to the kernel (glibc's `malloc_trim(0)`); a few
    milliseconds per hundred MB, with the GIL released (ctypes), though each arena is locked
    meanwhile (other threads' allocations wait), and the heap kept for body pieces goes too.
    False where there is no `malloc_trim` (not glibc)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


@functools.cache
def _malloc_trim() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim
