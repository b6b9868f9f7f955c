"""glibc malloc settings for streaming large bodies, applied once when the server starts.

aiohttp hands a body over as a new `bytes` per piece received (about 256 KB; uvloop and the HTTP
parser each copy it). With glibc's defaults those pieces come and go at the top of the heap: a
free often returns the top to the kernel (trim) and the next piece faults the same pages back
in, zero-filled. On 100 MB bodies that was about a quarter of the server's CPU, more than the
kernel's socket copies. A fixed mmap threshold above the piece size keeps pieces on the heap,
and a trim threshold of 64 MiB keeps the freed top mapped for the next piece. Memory returned to
the kernel is unchanged in the long run: what stays mapped is at most what was in use at once.
"""

from __future__ import annotations

import ctypes

#: mallopt parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 4 << 20
TRIM_THRESHOLD = 64 << 20


def tune() -> bool:
    """Apply the settings; False where the C library has no `mallopt` (not glibc)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
