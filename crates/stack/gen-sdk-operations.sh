#!/usr/bin/env bash
# Prints sdk-operations.txt from the SDK sources cargo downloaded (run `cargo fetch` first):
# each operation module `src/operation/<method>.rs` declares `pub struct <Operation>;`, and the IAM
# action is the operation name with the service's IAM prefix.
set -euo pipefail
registry=${CARGO_HOME:-$HOME/.cargo}/registry/src
echo "# AWS SDK for Rust operations of the services slipway's Lambdas use: <sdk crate> <fluent method> <IAM action>."
echo "# The IAM test maps a method call in a function's sources to its action with this table."
echo "# Regenerate after an SDK upgrade: bash crates/stack/gen-sdk-operations.sh > crates/stack/sdk-operations.txt"
for pair in sqs:sqs sns:sns ssm:ssm codebuild:codebuild eventbridge:events dynamodb:dynamodb ecr:ecr; do
  crate=${pair%%:*} prefix=${pair##*:}
  dir=$(ls -d "$registry"/*/aws-sdk-"$crate"-1.*/ | sort -V | tail -1)
  for f in "$dir"src/operation/*.rs; do
    op=$(grep -m1 -oE '^pub struct [A-Za-z0-9]+;' "$f" | awk '{print $3}' | tr -d ';')
    echo "$crate $(basename "$f" .rs) $prefix:$op"
  done
done
