#!/usr/bin/env bash
# The one test command (README): installs what the tests need on a bare machine (Mosquitto,
# mosquitto-clients, openssl, nats-server, boto3, pytest, cryptography), checks for module cycles, then runs every Rust test and the Python API tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
  echo "Installing mosquitto (the end-to-end tests start their own broker on a free port)"
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq mosquitto >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq mosquitto >/dev/null; fi
fi
if ! command -v mosquitto_sub >/dev/null 2>&1; then
  echo "Installing mosquitto-clients (the Audit live test connects two mosquitto_sub clients)"
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq mosquitto-clients >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq mosquitto-clients >/dev/null; fi
fi
if ! command -v openssl >/dev/null 2>&1; then
  echo "Installing openssl (the Audit tests make deliberately weak certificates with it)"
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq openssl >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq openssl >/dev/null; fi
fi
if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
  echo "Installing nats-server (the alarm-feed tests start their own on a free port)"
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq nats-server >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq nats-server >/dev/null; fi
fi
if ! python3 -c "import boto3, pytest, cryptography" >/dev/null 2>&1; then
  echo "Installing boto3, pytest and cryptography (test certificates for the Audit tests)"
  python3 -m pip install --quiet boto3 pytest cryptography
fi

python3 scripts/module-cycles.py   # no module imports itself through others (docs/ARCHITECTURE.md)
cargo build --bin thingward
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
THINGWARD_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/thingward" python3 -m pytest -q tests/python
