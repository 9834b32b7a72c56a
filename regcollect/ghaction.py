"""The GitHub Action's entry step (action.yml): action inputs -> one `regcollect remote` run.

No decisions are made here: inputs become a command line, the token goes to the CLI on stdin
(never on the command line, never printed, masked in the log), the CLI's JSON goes to a plan file,
and its counts become step outputs. The CLI itself appends the Markdown step summary.

Inputs arrive as INPUT_<NAME> with NAME upper-cased and '-' kept (INPUT_KEEP-LAST), GitHub's
convention for JavaScript and Docker actions; a composite action must set them itself, so
action.yml passes exactly the variables named in INPUTS. Run as `python -m regcollect.ghaction`.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# input name -> default when the variable is unset or empty (action.yml declares the same)
INPUTS: dict[str, str] = {
    "registry": "ghcr.io",
    "repositories": "",
    "policy": "",
    "keep-last": "",
    "keep-tags": "",
    "older-than": "",
    "untagged": "false",
    "apply": "false",
    "token": "",
    "api-url": "",
}
OUTPUTS = ("deleted", "untagged", "kept", "reclaimed-bytes", "plan", "journal")
TRUE, FALSE = ("true", "True", "TRUE"), ("false", "False", "FALSE")  # YAML 1.2 core, as @actions/core
EXIT_USAGE = 2


class BadInput(Exception):
    """An input the action cannot turn into a command line; nothing was contacted."""


def env_name(name: str) -> str:
    return "INPUT_" + name.replace(" ", "_").upper()


def read(env: Mapping[str, str], name: str) -> str:
    if name not in INPUTS:
        raise KeyError(f"{name} is not an input of action.yml")
    return env.get(env_name(name), "").strip() or INPUTS[name]


def lines(env: Mapping[str, str], name: str) -> list[str]:
    return [x.strip() for x in read(env, name).splitlines() if x.strip()]


def boolean(env: Mapping[str, str], name: str) -> bool:
    value = read(env, name)
    if value in TRUE or value in FALSE:
        return value in TRUE
    raise BadInput(f"input {name}: expected true or false, got {value!r}")


def command(env: Mapping[str, str], journal: str) -> tuple[list[str], str]:
    """The `regcollect remote` arguments and the token for stdin ('' when not given)."""
    args = ["remote", read(env, "registry"), "--api", "github", "-o", "json"]
    if url := read(env, "api-url"):
        args += ["--api-url", url]
    repos, policy = lines(env, "repositories"), read(env, "policy")
    if not repos and not policy:
        raise BadInput("input repositories: give OWNER/PACKAGE globs, one per line (or a policy file)")
    for repo in repos:
        args += ["--repo", repo]
    if policy:
        args += ["--policy", policy]
    if keep_last := read(env, "keep-last"):
        if not keep_last.isdigit():
            raise BadInput(f"input keep-last: expected a whole number >= 0, got {keep_last!r}")
        args += ["--keep-last", str(int(keep_last))]
    for tag in lines(env, "keep-tags"):
        args += ["--keep-tag", tag]
    if older := read(env, "older-than"):
        args += ["--older-than", older]
    if boolean(env, "untagged"):
        args.append("--untagged")
    if boolean(env, "apply"):
        args += ["--yes", "--journal", journal]
    else:
        args.append("--dry-run")
    token = read(env, "token")
    if "\n" in token or "\r" in token:
        raise BadInput("input token: must be one line")  # add-mask would hide only its first line
    if token:
        args.append("--password-stdin")
    return args, token


def escape(text: str) -> str:
    """A workflow command's message (GitHub's toolkit escapeData)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def set_outputs(path: str | None, values: dict[str, str]) -> None:
    if not path:
        for k, v in values.items():
            print(f"output {k}: {v}")
        return
    with open(path, "a", encoding="utf-8") as fh:
        for k, v in values.items():
            if "\n" in v or "\r" in v:
                delim = f"ghadelimiter_{secrets.token_hex(16)}"
                fh.write(f"{k}<<{delim}\n{v}\n{delim}\n")
            else:
                fh.write(f"{k}={v}\n")


def counts(doc: dict[str, Any]) -> dict[str, str]:
    """What was done (after an apply) or what applying the plan would do (plan only)."""
    summary = doc.get("summary") or {}
    if "outcome" in doc:
        done = [r for r in doc.get("results") or [] if r.get("status") == "done"]
        deleted = sum(1 for r in done if r.get("action") == "delete")
        untagged = sum(1 for r in done if r.get("action") == "untag")
        reclaimed = (doc.get("outcome") or {}).get("reclaimed_bytes", 0)
    else:
        deleted, untagged = summary.get("delete", 0), summary.get("untag", 0)
        reclaimed = 0 if doc.get("dry_run") is False else summary.get("reclaimable_bytes", 0)
    return {
        "deleted": str(deleted),
        "untagged": str(untagged),
        "kept": str(summary.get("keep", 0)),
        "reclaimed-bytes": str(reclaimed),
    }


def item(result: dict[str, Any]) -> str:
    return f"{result.get('action')} {result.get('repository')}@{result.get('digest')}: {result.get('detail')}"


def show(plan_file: Path, doc: dict[str, Any]) -> None:
    """The plan as text in the log (the JSON is the file; the table is the step summary)."""
    from regcollect.errors import RegcollectError
    from regcollect.report import plan_text
    from regcollect.saved import load_plan
    from regcollect.units import format_bytes

    try:
        print(plan_text(load_plan(plan_file)))
    except RegcollectError as exc:
        print(f"(the plan file cannot be shown: {exc})")
    for r in doc.get("results") or []:
        if r.get("status") != "done":
            print(f"{r.get('status')}: {item(r)}")
    if out := doc.get("outcome"):
        print(
            f"Done: {out.get('done')} done, {out.get('failed')} failed, {out.get('skipped')} skipped; "
            f"{format_bytes(int(out.get('reclaimed_bytes') or 0))} reclaimed"
        )
    for note in doc.get("notes") or []:
        print(note)


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    work = Path(tempfile.mkdtemp(prefix="regcollect-", dir=env.get("RUNNER_TEMP") or None))
    journal = str(work / "journal.jsonl")
    try:
        args, token = command(env, journal)
    except BadInput as exc:
        print(f"::error::{escape(str(exc))}", flush=True)
        return EXIT_USAGE
    if token:
        print(f"::add-mask::{token}", flush=True)
    plan_file = work / "plan.json"
    child_env = {k: v for k, v in env.items() if not k.startswith("INPUT_")}
    resume = secrets.token_hex(16)
    # Registry text (tags, error messages) must not be read as workflow commands.
    print(f"::stop-commands::{resume}", flush=True)
    try:
        with plan_file.open("w", encoding="utf-8") as out:
            code = subprocess.run(
                [sys.executable, "-m", "regcollect", *args],
                input=token + "\n" if token else "",
                stdout=out,
                env=child_env,
                text=True,
                check=False,
            ).returncode
        code = 128 - code if code < 0 else code  # killed by a signal: as a shell reports it
        try:
            doc = json.loads(plan_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            doc = {}
        if isinstance(doc, dict) and "actions" in doc:
            show(plan_file, doc)
    finally:
        print(f"::{resume}::", flush=True)
    if not isinstance(doc, dict) or not doc:
        print("::error::regcollect gave no plan (see the log above)")
        return code or 1
    for w in doc.get("warnings") or []:
        print(f"::warning::{escape(str(w))}")
    for e in doc.get("errors") or []:
        print(f"::error::{escape(str(e))}")
    for r in doc.get("results") or []:
        if r.get("status") == "failed":
            print(f"::error::{escape(item(r))}")
    values = counts(doc) if "summary" in doc else {}
    values["plan"] = str(plan_file)
    if Path(journal).exists():
        values["journal"] = journal
    set_outputs(env.get("GITHUB_OUTPUT"), values)
    return code


if __name__ == "__main__":
    sys.exit(main())
