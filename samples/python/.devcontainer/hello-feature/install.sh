#!/bin/sh
set -e
# Feature options arrive as upper-cased environment variables.
cat > /usr/local/bin/hello-feature <<SCRIPT
#!/bin/sh
echo "${GREETING:-Hello}"
SCRIPT
chmod 0755 /usr/local/bin/hello-feature
