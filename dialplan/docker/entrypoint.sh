#!/bin/sh
# Writes the AMI secret of the [hotline] manager user from the environment, so it is in no image layer and no
# file under version control, then starts Asterisk.
set -eu

secret_file=/etc/asterisk/hotline/manager_hotline_secret.conf
secret="${HOTLINE_AMI__SECRET:-}"
if [ -z "$secret" ]; then
    echo "hotline-asterisk: HOTLINE_AMI__SECRET is empty; the AMI user 'hotline' cannot log in" >&2
    rm -f "$secret_file"
else
    # Asterisk config has no quoting: ';' starts a comment and a line break ends the value.
    case "$secret" in
        *';'* | *'
'* | ' '* | *' ')
            echo "hotline-asterisk: HOTLINE_AMI__SECRET must not contain ';', line breaks or edge spaces" >&2
            exit 64
            ;;
    esac
    umask 077
    printf '[hotline](+)\nsecret = %s\n' "$secret" > "$secret_file"
    chown asterisk:asterisk "$secret_file"
fi
unset HOTLINE_AMI__SECRET secret

exec "$@"
