#!/bin/sh
# Renders users.acl.template into a Redis aclfile: comments dropped, continued
# lines joined, the namespace and the two passwords' SHA-256 hashes put in.
#
#   render-acl.sh TEMPLATE NAMESPACE RUNTIME_PASSWORD_FILE SETUP_PASSWORD_FILE OUTPUT
#
# A password file holds one line; its line break, if any, is not part of the
# password (the threadweave processes read REDIS_PASSWORD_FILE the same way).
# POSIX sh, sed and sha256sum only: it runs in the redis image's init container.
set -eu
[ $# -eq 5 ] || { echo "usage: $0 TEMPLATE NAMESPACE RUNTIME_PASSWORD_FILE SETUP_PASSWORD_FILE OUTPUT" >&2; exit 2; }
template=$1 namespace=$2 runtime_file=$3 setup_file=$4 output=$5

case $namespace in
    '' | *[!A-Za-z0-9_.-]*) echo "render-acl: invalid namespace '$namespace'" >&2; exit 1 ;;
esac

password_hash() {
    password=$(sed -e 's/\r$//' "$1")
    [ -n "$password" ] || { echo "render-acl: $1 is empty" >&2; exit 1; }
    [ "$(printf '%s' "$password" | wc -l)" -eq 0 ] || { echo "render-acl: $1 holds more than one line" >&2; exit 1; }
    printf '%s' "$password" | sha256sum | cut -d ' ' -f 1
}
runtime_hash=$(password_hash "$runtime_file")
setup_hash=$(password_hash "$setup_file")

umask 077
sed -e '/^[[:space:]]*#/d' "$template" \
    | sed -e ':join' -e '/\\$/N' -e 's/[[:space:]]*\\\n[[:space:]]*/ /' -e 't join' \
    | sed -e '/^[[:space:]]*$/d' \
        -e "s/@NAMESPACE@/$namespace/g" \
        -e "s/@RUNTIME_PASSWORD_SHA256@/$runtime_hash/g" \
        -e "s/@SETUP_PASSWORD_SHA256@/$setup_hash/g" \
    > "$output.tmp"
mv "$output.tmp" "$output"
