// Package packaging holds no code: it is the home of the files that make the
// ecr-ptc .deb and .rpm (with nfpm.yaml at the repository root) and of the
// tests that check them.
//
//   - build.sh builds the packages (make package); version.sh derives their
//     version from git; install-tools.sh installs the pinned nfpm (and, for
//     make bench, docker-credential-ecr-login).
//   - systemd/ecr-ptc-mirror.service is the sandboxed unit of the shim.
//   - scripts/ are the maintainer scripts, shared by deb and rpm: install
//     never changes engine configuration, removal runs `ecr-ptc setup
//     --undo` first, upgrade restarts the shim and keeps its config.
//   - etc/config.toml is the default /etc/ecr-ptc/config.toml, every key
//     commented out at its default.
//   - packer/ is an example Amazon Linux 2023 AMI recipe and user data.
//
// The tests build both packages, check their file lists and modes, and
// install, upgrade and remove them in a throwaway Debian root (dpkg in a
// chroot, rpm --root), comparing engine configuration byte for byte, and
// boot the installed deb with systemd-nspawn to check that the sandboxed
// unit starts the shim. They never touch the machine's own /etc.
package packaging
