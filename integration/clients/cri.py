#!/usr/bin/env python3
"""A minimal CRI (runtime.v1) client, standing in for crictl, which Debian 12 does not package.

Speaks gRPC through python3-grpcio with protobuf messages encoded by hand (the few CRI messages
used here; field numbers from k8s.io/cri-api runtime/v1 api.proto), so no protoc is needed.

    cri.py SOCKET version
    cri.py SOCKET status                         -> the CRI plugin's verbose config (JSON)
    cri.py SOCKET runp HANDLER NAME LOGDIR       -> pod sandbox id (host network, no CNI;
                                                    cgroup parent from $CRI_CGROUP_PARENT)
    cri.py SOCKET podstatus POD                  -> {"state":..., "runtime_handler":...}
    cri.py SOCKET create POD NAME IMAGE LOGDIR CMD...   -> container id
                                                    (memory limit in bytes from $CRI_MEMORY_LIMIT)
    cri.py SOCKET start|stop|rm CTR
    cri.py SOCKET ctrstatus CTR                  -> {"state":..., "exit_code":..., "reason":...}
    cri.py SOCKET exec CTR CMD...                -> prints stdout/stderr, exits with the exit code
    cri.py SOCKET stopp|rmp POD
"""
import json
import os
import sys

import grpc

# --- protobuf wire format -------------------------------------------------------------------


def _varint(n):
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


class M(bytes):
    """An encoded sub-message."""


def enc(*fields):
    """enc((num, value), ...): str/bytes/M are length-delimited, int/bool are varints,
    lists are repeated fields, dicts are map<string,string>, None is skipped."""
    out = bytearray()
    for num, val in fields:
        if val is None:
            continue
        if isinstance(val, dict):
            val = [M(enc((1, k), (2, v))) for k, v in val.items()]
        vals = val if isinstance(val, list) else [val]
        for v in vals:
            if isinstance(v, bool) or isinstance(v, int):
                out += _varint(num << 3 | 0) + _varint(int(v))
            else:
                data = v.encode() if isinstance(v, str) else bytes(v)
                out += _varint(num << 3 | 2) + _varint(len(data)) + data
    return M(out)


def dec(data):
    """Decode to {field number: [values]}; varints as int, length-delimited as bytes."""
    fields, i = {}, 0
    while i < len(data):
        key, i = _read_varint(data, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, i = _read_varint(data, i)
        elif wire == 2:
            ln, i = _read_varint(data, i)
            val, i = data[i:i + ln], i + ln
        elif wire == 1:
            val, i = data[i:i + 8], i + 8
        elif wire == 5:
            val, i = data[i:i + 4], i + 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
        fields.setdefault(num, []).append(val)
    return fields


def _read_varint(data, i):
    shift = n = 0
    while True:
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def one(fields, num, default=None):
    vals = fields.get(num)
    return vals[0] if vals else default


def text(fields, num):
    return one(fields, num, b"").decode(errors="replace")


def mapping(fields, num):
    out = {}
    for entry in fields.get(num, []):
        e = dec(entry)
        out[text(e, 1)] = text(e, 2)
    return out


# --- CRI messages ---------------------------------------------------------------------------

NODE, CONTAINER = 2, 1
CONTAINER_STATES = {0: "CREATED", 1: "RUNNING", 2: "EXITED", 3: "UNKNOWN"}
SANDBOX_STATES = {0: "SANDBOX_READY", 1: "SANDBOX_NOTREADY"}


def sandbox_config(name, logdir):
    metadata = enc((1, name), (2, name + "-uid"), (3, "testudo-clients"), (4, 0))
    namespaces = enc((1, NODE), (2, CONTAINER), (3, 0))   # network NODE: no CNI needed
    security = enc((1, namespaces))
    linux = enc((1, os.environ.get("CRI_CGROUP_PARENT") or None), (2, security))
    return enc((1, metadata), (2, ""), (3, logdir), (8, linux))


class Client:
    def __init__(self, socket):
        self.ch = grpc.insecure_channel("unix://" + socket)

    def call(self, service, method, request, timeout=60):
        fn = self.ch.unary_unary("/runtime.v1.%s/%s" % (service, method))
        return dec(fn(bytes(request), timeout=timeout))

    def rt(self, method, request, timeout=60):
        return self.call("RuntimeService", method, request, timeout)


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    c, cmd, args = Client(argv[1]), argv[2], argv[3:]
    if cmd == "version":
        r = c.rt("Version", enc((1, "v1")))
        print(json.dumps({"runtime_name": text(r, 2), "runtime_version": text(r, 3),
                          "runtime_api_version": text(r, 4)}))
    elif cmd == "status":
        r = c.rt("Status", enc((1, True)))
        info = mapping(r, 2)
        print(info.get("config", "{}"))
    elif cmd == "runp":
        handler, name, logdir = args
        r = c.rt("RunPodSandbox", enc((1, sandbox_config(name, logdir)), (2, handler)), 120)
        print(text(r, 1))
    elif cmd == "podstatus":
        r = c.rt("PodSandboxStatus", enc((1, args[0])))
        st = dec(one(r, 1, b""))
        print(json.dumps({"state": SANDBOX_STATES.get(one(st, 3, 0)),
                          "runtime_handler": text(st, 9)}))
    elif cmd == "create":
        pod, name, image, logdir, command = args[0], args[1], args[2], args[3], args[4:]
        # LinuxContainerConfig.resources.memory_limit_in_bytes
        memory = os.environ.get("CRI_MEMORY_LIMIT")
        linux = enc((1, enc((4, int(memory))))) if memory else None
        config = enc((1, enc((1, name), (2, 0))), (2, enc((1, image))), (3, command),
                     (11, name + ".log"), (15, linux))
        r = c.rt("CreateContainer", enc((1, pod), (2, config),
                                        (3, sandbox_config(pod_name(c, pod), logdir))), 120)
        print(text(r, 1))
    elif cmd == "start":
        c.rt("StartContainer", enc((1, args[0])), 120)
    elif cmd == "stop":
        c.rt("StopContainer", enc((1, args[0]), (2, int(args[1]) if len(args) > 1 else 10)), 120)
    elif cmd == "rm":
        c.rt("RemoveContainer", enc((1, args[0])), 120)
    elif cmd == "ctrstatus":
        r = c.rt("ContainerStatus", enc((1, args[0])))
        st = dec(one(r, 1, b""))
        print(json.dumps({"state": CONTAINER_STATES.get(one(st, 3, 0)),
                          "exit_code": one(st, 7, 0), "reason": text(st, 10),
                          "message": text(st, 11)}))
    elif cmd == "exec":
        r = c.rt("ExecSync", enc((1, args[0]), (2, args[1:]), (3, 30)), 60)
        sys.stdout.write(text(r, 1))
        sys.stderr.write(text(r, 2))
        sys.exit(one(r, 3, 0))
    elif cmd == "stopp":
        c.rt("StopPodSandbox", enc((1, args[0])), 120)
    elif cmd == "rmp":
        c.rt("RemovePodSandbox", enc((1, args[0])), 120)
    else:
        sys.exit("unknown command %s\n%s" % (cmd, __doc__))


def pod_name(c, pod):
    r = c.rt("PodSandboxStatus", enc((1, pod)))
    st = dec(one(r, 1, b""))
    return text(dec(one(st, 2, b"")), 1)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except grpc.RpcError as e:
        sys.stderr.write("cri.py: %s: %s\n" % (e.code().name, e.details()))
        sys.exit(125)
