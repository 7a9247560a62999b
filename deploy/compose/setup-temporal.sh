#!/bin/sh
# One-shot set-up of the Temporal server for vpsie-runbook (docker-compose.yml service temporal-setup, image
# temporalio/admin-tools): waits until the frontend answers, creates the namespace when it is missing, and
# registers the project's search attributes, each with its type (the list of src/workflows/search-attributes.ts:
# test/unit/compose.test.ts checks that the two agree, test/integration/deploy-compose.test.ts runs this script).
# Safe to run again: an existing namespace is kept, and an attribute that exists with the same type is left as
# it is (one that exists with another type fails, naming it).
set -eu

: "${TEMPORAL_ADDRESS:?TEMPORAL_ADDRESS must be host:port of the Temporal frontend}"
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
ATTEMPTS="${SETUP_ATTEMPTS:-60}"
DELAY="${SETUP_DELAY:-2}"

# retry WHAT COMMAND...: the server takes a while to come up, and a new namespace a while to be known everywhere.
retry() {
  what=$1
  shift
  i=1
  until "$@"; do
    if [ "$i" -ge "$ATTEMPTS" ]; then
      echo "temporal-setup: gave up on ${what} after ${ATTEMPTS} attempts" >&2
      exit 1
    fi
    echo "temporal-setup: ${what}: not yet (attempt ${i}/${ATTEMPTS}), again in ${DELAY}s"
    i=$((i + 1))
    sleep "$DELAY"
  done
}

namespace_exists() {
  temporal operator namespace describe --address "$TEMPORAL_ADDRESS" --namespace "$NAMESPACE" >/dev/null 2>&1
}
ensure_namespace() {
  namespace_exists || temporal operator namespace create --address "$TEMPORAL_ADDRESS" --namespace "$NAMESPACE"
}

retry 'the Temporal frontend' temporal operator cluster health --address "$TEMPORAL_ADDRESS"
retry "namespace ${NAMESPACE}" ensure_namespace
retry 'search attributes' temporal operator search-attribute create \
  --address "$TEMPORAL_ADDRESS" --namespace "$NAMESPACE" \
  --name VPSieNodeNamespace --type Keyword \
  --name VPSieNodeName --type Keyword \
  --name RunbookStage --type Keyword \
  --name RunbookOutcome --type Keyword \
  --name NodeGroup --type Keyword \
  --name RunbookCause --type Keyword \
  --name ApprovalPending --type Bool
echo "temporal-setup: namespace ${NAMESPACE} is ready with the vpsie-runbook search attributes"
