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
// The package must never write a file it has not parsed and validated first,
// never touch a path outside the root it was given, and never change bytes
// of a file that its edit does not need to change: comments, key order and
// indentation of the files people wrote are kept.
package hosts
