#!/usr/bin/env python3
"""seccomp_compare.py [--may-drop KEY,KEY] PROFILE CONFIG_JSON

Compares a seccomp profile given to an engine (OCI form: the LinuxSeccomp object) with the
linux.seccomp the engine put in the runtime's config.json. Prints "same" when the default
action, default errno, flags and every (syscall, action, errno, args) rule came through, else
"differs" and what was lost or added. Top-level fields the engine dropped are listed as notes;
--may-drop names top-level keys an engine is known to drop (docker 20.10: defaultErrnoRet and
flags), whose loss is reported as "dropped by the engine: ..." instead of a difference.
"""
import json
import sys


def rules(prof):
    out = set()
    for entry in prof.get("syscalls") or []:
        names = entry.get("names") or ([entry["name"]] if entry.get("name") else [])
        args = json.dumps(sorted((a.get("index", 0), a.get("value", 0), a.get("valueTwo", 0), a.get("op", ""))
                                 for a in entry.get("args") or []))
        for name in names:
            out.add((name, entry.get("action"), entry.get("errnoRet"), args))
    return out


def main():
    args = sys.argv[1:]
    may_drop = set()
    if args and args[0] == "--may-drop":
        may_drop = set(filter(None, args[1].split(",")))
        args = args[2:]
    prof = json.load(open(args[0]))
    try:
        spec = json.load(open(args[1]))
    except (OSError, ValueError) as e:
        print("differs: no config.json captured for the container (%s)" % e)
        return
    got = (spec.get("linux") or {}).get("seccomp")
    if not got:
        print("differs: config.json has no linux.seccomp")
        return
    problems, dropped = [], []
    for key in ("defaultAction", "defaultErrnoRet", "flags"):
        if prof.get(key) and prof.get(key) != got.get(key):
            if key in may_drop and got.get(key) in (None, [], 0):
                dropped.append("%s (profile %s)" % (key, json.dumps(prof[key])))
            else:
                problems.append("%s: profile %r, config.json %r" % (key, prof.get(key), got.get(key)))
    want, have = rules(prof), rules(got)
    for r in sorted(want - have, key=str)[:20]:
        problems.append("lost rule: %s" % (r,))
    for r in sorted(have - want, key=str)[:20]:
        problems.append("added rule: %s" % (r,))
    print("same" if not problems else "differs")
    if dropped:
        print("  dropped by the engine: " + ", ".join(dropped))
    for p in problems:
        print("  " + p)
    for key in sorted(set(prof) - {"syscalls"}):
        if prof[key] != got.get(key) and not any(d.startswith(key + " ") for d in dropped):
            print("  note: %s: profile %s, config.json %s" % (key, json.dumps(prof[key])[:200], json.dumps(got.get(key))[:200]))
    print("  rules: profile %d, config.json %d" % (len(want), len(have)))


if __name__ == "__main__":
    main()
