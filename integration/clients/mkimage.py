#!/usr/bin/env python3
"""Write a one-layer image archive from a root filesystem directory, with no registry.

    mkimage.py ROOTFS OUT.tar NAME:TAG=CMD_JSON [NAME:TAG=CMD_JSON ...]

The archive is both an OCI image layout (oci-layout, index.json, blobs/sha256/...) and a
docker-save archive (manifest.json), so `ctr images import`, `docker load` and `podman load`
all take it. Every NAME:TAG shares the one layer; each gets its own config with its own Cmd.
"""
import hashlib
import io
import json
import os
import sys
import tarfile


def layer_bytes(rootfs):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(rootfs):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                full = os.path.join(dirpath, name)
                arc = os.path.relpath(full, rootfs)
                info = tar.gettarinfo(full, arcname=arc)
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                info.mtime = 0
                if info.isreg():
                    with open(full, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
    return buf.getvalue()


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    rootfs, out, specs = sys.argv[1], sys.argv[2], sys.argv[3:]
    blobs = {}

    def blob(data):
        digest = hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return digest

    layer = layer_bytes(rootfs)
    layer_digest = blob(layer)
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}
    docker_manifest = []
    for spec in specs:
        ref, _, cmd = spec.partition("=")
        config = {
            "architecture": "amd64",
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            "config": {"Cmd": json.loads(cmd) if cmd else ["sh"],
                       "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + layer_digest]},
            "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "mkimage.py"}],
        }
        config_digest = blob(json.dumps(config, sort_keys=True).encode())
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": "sha256:" + config_digest, "size": len(blobs[config_digest])},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": "sha256:" + layer_digest, "size": len(layer)}],
        }
        manifest_digest = blob(json.dumps(manifest, sort_keys=True).encode())
        # fully qualified: podman would file a short name under localhost/
        name = ref if "/" in ref.split(":")[0] else "docker.io/library/" + ref
        index["manifests"].append({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:" + manifest_digest, "size": len(blobs[manifest_digest]),
            "annotations": {"io.containerd.image.name": name,
                            "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[-1]},
        })
        docker_manifest.append({"Config": "blobs/sha256/" + config_digest, "RepoTags": [name],
                                "Layers": ["blobs/sha256/" + layer_digest]})

    with tarfile.open(out, "w") as tar:
        def add(path, data):
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", json.dumps(index).encode())
        add("manifest.json", json.dumps(docker_manifest).encode())
        for digest, data in sorted(blobs.items()):
            add("blobs/sha256/" + digest, data)


if __name__ == "__main__":
    main()
