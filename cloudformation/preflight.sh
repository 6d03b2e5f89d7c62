#!/usr/bin/env bash
# Checks, in milliseconds and without calling AWS, what a Makefile target needs before it runs:
# the variables it reads, AWS credentials and region, the aws CLI. Says what to set and exits 2.
# Usage: preflight.sh TARGET [FUNCTION]   (reads BUCKET, STACK_NAME, WEBHOOK_SECRET_PARAM from make)
set -uo pipefail

target=${1:?usage: preflight.sh TARGET}
missing=()

need_var() { # name, explanation
  [ -n "${!1:-}" ] || missing+=("$1 is not set: $2")
}

case "$target" in
  package | deploy)
    need_var BUCKET "an S3 bucket in the stack's region for the Lambda zips, e.g. make $target BUCKET=my-slipway-artifacts (create it once: aws s3 mb s3://my-slipway-artifacts)"
    ;;
  logs)
    case "${2:-}" in
      listener | spawner | notifier | cleanup | build | api) ;;
      "") missing+=("FUNCTION is not set: make logs FUNCTION=listener (or spawner, notifier, cleanup, build, api)") ;;
      *) missing+=("FUNCTION=${2} is not one of listener, spawner, notifier, cleanup, build, api") ;;
    esac
    ;;
  secret)
    [[ "${WEBHOOK_SECRET_PARAM:-}" =~ ^/[A-Za-z0-9_./-]+$ ]] ||
      missing+=("WEBHOOK_SECRET_PARAM must be an SSM parameter name such as /slipway/webhook-secret")
    command -v openssl >/dev/null || missing+=("openssl is not installed (it generates the secret)")
    ;;
esac
if [[ ! "${STACK_NAME:-}" =~ ^[A-Za-z][A-Za-z0-9-]{0,40}$ ]]; then
  missing+=("STACK_NAME must start with a letter and hold only letters, digits and dashes (at most 41: queue and role names derive from it)")
fi

# Credentials: any source the aws CLI reads, checked locally (calling STS would take seconds).
has_credentials() {
  [ -n "${AWS_ACCESS_KEY_ID:-}" ] && [ -n "${AWS_SECRET_ACCESS_KEY:-}" ] && return 0
  [ -n "${AWS_PROFILE:-}" ] && return 0
  [ -n "${AWS_WEB_IDENTITY_TOKEN_FILE:-}" ] && return 0
  [ -n "${AWS_CONTAINER_CREDENTIALS_RELATIVE_URI:-}${AWS_CONTAINER_CREDENTIALS_FULL_URI:-}" ] && return 0
  # An EC2 instance role cannot be seen without a network call: say so explicitly.
  [ "${AWS_CREDENTIALS_FROM:-}" = instance ] && return 0
  local home=${HOME:-/nonexistent}
  [ -s "${AWS_SHARED_CREDENTIALS_FILE:-$home/.aws/credentials}" ] && return 0
  [ -s "${AWS_CONFIG_FILE:-$home/.aws/config}" ] && return 0
  return 1
}
if ! has_credentials; then
  missing+=("no AWS credentials: set AWS_PROFILE (after aws configure or aws sso login), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; on an EC2 instance role set AWS_CREDENTIALS_FROM=instance")
fi
if [ -z "${AWS_REGION:-}${AWS_DEFAULT_REGION:-}" ] && [ ! -s "${AWS_CONFIG_FILE:-${HOME:-/nonexistent}/.aws/config}" ]; then
  missing+=("no AWS region: set AWS_REGION, e.g. AWS_REGION=eu-west-1")
fi
command -v aws >/dev/null || missing+=("the aws CLI is not installed (pip install awscli, or AWS's installer)")

if [ ${#missing[@]} -gt 0 ]; then
  for m in "${missing[@]}"; do echo "make $target: $m" >&2; done
  exit 2
fi
