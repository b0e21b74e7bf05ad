// Package hosts points container engines at the ecr-ptc shim and at the
// account's ECR pull-through cache, and takes them back off again.
//
// It edits four kinds of files:
//
//   - containerd hosts.toml files (<certs.d>/<upstream>/hosts.toml, also read
//     by Docker Engine 28+ with the containerd image store from
//     /etc/docker/certs.d), whose first host is the shim and whose server is
//     the real upstream;
//   - containerd's config.toml, where the CRI plugin's registry config_path
//     must name the certs.d directory;
//   - Docker's daemon.json (registry-mirrors) and the Docker CLI's
//     config.json (credHelpers);
//   - a registries.conf drop-in and the containers auth file for podman,
//     buildah, skopeo and CRI-O.
//
// Every edit is split in two: a pure function renders the new bytes from the
// old ones (RenderHostsTOML, EditContainerdConfig, MergeRegistryMirror,
// MergeCredHelper, RenderRegistriesConf), and Apply writes Plans of such
// changes all or nothing: it checks every target (inside the root, at most
// MaxFileSize, not immutable, not on a read-only mount), records each file's
// original bytes, mode and owner in an undo journal under
// <root>/var/lib/ecr-ptc/undo before anything changes, stages every new file
// and renames them in, rolling back on failure. A rerun after a crash at any
// point completes the change; Undo, even after a crash, puts every file back
// byte for byte and removes what Apply created, the journal included.
//
// Plans mark root-only secret files (the CA key, the shim's proxy
// environment) with Change.Secret, and Plan.Diff, which renders dry runs,
// shows a stand-in line for them instead of their bytes. SystemPath turns
// a path below the root back into the path on the configured system.
//
// hosts owns the rendering of engine configs and their atomic, journaled,
// undoable edits. It must never:
//
//   - touch a file outside the root it was given, or follow a link out of it;
//   - write half a file: every file is staged and renamed in whole, after
//     the journal records it, and a failure puts back what was renamed;
//   - write a file it has not parsed and validated first, or change bytes
//     its edit does not need to change: comments, key order and indentation
//     of the files people wrote are kept;
//   - print a secret file's content in a diff;
//   - import proxy or mirror: the local CA it writes comes from localca,
//     and the daemon's packages never need to be linked to edit a config.
package hosts
