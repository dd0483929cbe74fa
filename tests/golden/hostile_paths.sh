#!/bin/bash
#SBATCH --job-name=orch-e-9c0d1e2f
#SBATCH --comment=orch-e-9c0d1e2f
#SBATCH --array=0-2
#SBATCH --output="/home/us er/proj 'single' \"double\" $(touch PWNED) `id`; rm -rf ~ é/.logs/100%% sure #1/slurm-%A_%a.out"
#SBATCH --time=0:59:59
#SBATCH --mem-per-cpu=1G
#SBATCH --cpus-per-task=1
# Paths below are quoted data and may hold literal $, quotes or backslashes (SC2016, SC2089, SC2090);
# setup lines may source files that exist only on the cluster (SC1090, SC1091).
# shellcheck disable=SC1090,SC1091,SC2016,SC2089,SC2090
#
# Rendered by orchestrator for submission orch-e-9c0d1e2f: array task K runs the experiment indices on
# line K+1 of the task file, up to 1 at a time. No parameter values appear here: the
# command gets the experiment path and one index, and reads the parameters itself.
# Per index: <log dir>/<index>.log (appended, one header and footer per attempt) and
# <log dir>/<index>.status (the exit code, written when the index has finished).

# No -e: one index failing must not stop the others of this task.
set -uo pipefail

ORCH_ROOT='/home/us er/proj '"'"'single'"'"' "double" $(touch PWNED) `id`; rm -rf ~ é'
ORCH_EXPERIMENT='a b/$(touch PWNED)/`x`;rm -rf y'"'"'"q"/é.json'
ORCH_TASKS='/home/us er/proj '"'"'single'"'"' "double" $(touch PWNED) `id`; rm -rf ~ é/.orchestrator/orch-e-9c0d1e2f.tasks'
ORCH_LOGS='/home/us er/proj '"'"'single'"'"' "double" $(touch PWNED) `id`; rm -rf ~ é/.logs/100% sure #1'
ORCH_PARALLEL=1
export ORCH_ROOT ORCH_EXPERIMENT

orch_fail() {
    printf 'orchestrator: %s\n' "$1" >&2
    exit 2
}

cd "$ORCH_ROOT" || orch_fail "cannot cd to the project root $ORCH_ROOT"

[[ -n "${SLURM_ARRAY_TASK_ID:-}" ]] || orch_fail "SLURM_ARRAY_TASK_ID is not set: this script runs as a task of a job array"
[[ "$SLURM_ARRAY_TASK_ID" =~ ^[0-9]+$ ]] || orch_fail "SLURM_ARRAY_TASK_ID is not a task id: '$SLURM_ARRAY_TASK_ID'"
[[ -r "$ORCH_TASKS" ]] || orch_fail "cannot read the task file $ORCH_TASKS"
ORCH_JOB="${SLURM_ARRAY_JOB_ID:-unknown}_${SLURM_ARRAY_TASK_ID}"
mapfile -t -s "$SLURM_ARRAY_TASK_ID" -n 1 orch_line <"$ORCH_TASKS"
read -r -a orch_indices <<<"${orch_line[0]:-}"
[[ -n "${orch_indices[0]:-}" ]] || orch_fail "line $((SLURM_ARRAY_TASK_ID + 1)) of the task file $ORCH_TASKS is empty or missing"
for index in "${orch_indices[@]}"; do
    [[ "$index" =~ ^[0-9]+$ ]] || orch_fail "line $((SLURM_ARRAY_TASK_ID + 1)) of $ORCH_TASKS holds '$index', not an index"
done
mkdir -p -- "$ORCH_LOGS" || orch_fail "cannot create the log directory $ORCH_LOGS"

# Run one index: header, command (output appended to its log), footer, then the status file.
orch_run_index() {
    local index=$1 log="$ORCH_LOGS/$1.log" status="$ORCH_LOGS/$1.status" code
    rm -f -- "$status"
    printf '=== orchestrator: index %s on %s, job %s, started %(%Y-%m-%dT%H:%M:%S%z)T\n' \
        "$index" "$HOSTNAME" "$ORCH_JOB" -1 >>"$log"
    (
        export ORCH_INDEX="$index"
        python src/main.py -e "$ORCH_EXPERIMENT" -i "$index"
    ) >>"$log" 2>&1 </dev/null
    code=$?
    printf '=== orchestrator: index %s exited with code %s, ended %(%Y-%m-%dT%H:%M:%S%z)T\n' \
        "$index" "$code" -1 >>"$log"
    # tmp + mv: a reader never sees an empty or partial status file
    printf '%s\n' "$code" >"$status.tmp" && mv -f -- "$status.tmp" "$status"
    return "$code"
}

orch_pids=()
orch_running=0
orch_count=0
for index in "${orch_indices[@]}"; do
    orch_count=$((orch_count + 1))
    if (( orch_running >= ORCH_PARALLEL )); then
        wait -n  # until any index has finished (exit codes are collected below, in index order)
        orch_running=$((orch_running - 1))
    fi
    orch_run_index "$index" &
    orch_pids+=("$!")
    orch_running=$((orch_running + 1))
done

# The task's exit code is the first failing index's (in task-file order), so sacct shows e.g. FAILED 3:0.
orch_exit=0
orch_failed=""
for i in "${!orch_pids[@]}"; do
    wait "${orch_pids[$i]}"
    code=$?
    if (( code != 0 )); then
        orch_failed+=" ${orch_indices[$i]} (exit $code)"
        if (( orch_exit == 0 )); then orch_exit=$code; fi
    fi
done
if (( orch_exit == 0 )); then
    printf 'orchestrator: task %s: all %s indices exited 0\n' "$ORCH_JOB" "$orch_count"
else
    printf 'orchestrator: task %s: failed:%s\n' "$ORCH_JOB" "$orch_failed"
fi
exit "$orch_exit"
