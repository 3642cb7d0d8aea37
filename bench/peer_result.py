"""The ending every peer script shares: its problems on stderr, one JSON line on stdout."""
import json
import sys


def finish(peer, wall, problems, **extra):
    """Prints up to 10 problems and the result line bench/lib.sh reads; the exit status."""
    for p in problems[:10]:
        print(f"{peer}: {p}", file=sys.stderr)
    print(json.dumps({"peer": peer, "wall_s": round(wall, 3), **extra, "agrees": not problems,
                      "problems": len(problems)}))
    return 1 if problems else 0
