#!/usr/bin/env bash
# Build the RPM of the committed tree (HEAD) with rpmbuild: git archive → SOURCES, then
# rpmbuild -bb packaging/rpm/f2b.spec. Result: target/rpm/RPMS/<arch>/f2b-*.rpm.
# On a non-RPM host (Debian: apt install rpm) the BuildRequires cannot be checked: --nodeps.
set -euo pipefail
cd "$(dirname "$0")/../.."
version=$(sed -n 's/^Version: *//p' packaging/rpm/f2b.spec)
top="$PWD/target/rpm"
mkdir -p "$top/SOURCES"
git archive --format=tar.gz --prefix="f2b-$version/" -o "$top/SOURCES/f2b-$version.tar.gz" HEAD
nodeps=()
command -v dpkg >/dev/null && ! rpm -q rpm >/dev/null 2>&1 && nodeps=(--nodeps)
rpmbuild -bb "${nodeps[@]}" \
  --define "_topdir $top" \
  --define "debug_package %{nil}" \
  packaging/rpm/f2b.spec
ls -l "$top"/RPMS/*/f2b-*.rpm
