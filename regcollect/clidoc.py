"""Generate docs/cli.md from the click commands, so the reference cannot drift from the code.

python -m regcollect.clidoc > docs/cli.md      (tests/unit/test_docs.py checks it is current)
"""

from __future__ import annotations

import inspect

import click

from regcollect.cli import cli


def _option_row(p: click.Parameter) -> str:
    assert isinstance(p, click.Option)
    names = ", ".join(f"`{o}`" for o in p.opts + p.secondary_opts)
    if not p.is_flag and p.metavar:
        names += f" {p.metavar}"
    elif not p.is_flag and isinstance(p.type, click.Choice):
        names += " " + "\\|".join(str(c) for c in p.type.choices)
    elif not p.is_flag and p.type is not click.STRING and not isinstance(p.type, click.Path):
        names += f" {p.type.name.upper()}"
    elif not p.is_flag:
        names += " " + (p.name or "").upper().replace("_", "-")
    help_text = (p.help or "").replace("|", "\\|")
    if p.multiple:
        help_text += " Repeatable."
    if p.show_default and p.default not in (None, False):
        help_text += f" Default: `{p.default}`."
    return f"| {names} | {help_text} |"


def render() -> str:
    from regcollect import commands  # noqa: F401 - registers the subcommands

    # The same settings as a real invocation (click caches the help option per command).
    settings = dict(cli.context_settings, terminal_width=80, max_content_width=80)
    ctx = click.Context(cli, info_name="regcollect", **settings)
    out = [
        "# Command reference",
        "",
        "Generated from the commands by `python -m regcollect.clidoc > docs/cli.md`; a test fails",
        "when this page and the code disagree. Exit codes: [exit-codes.md](exit-codes.md).",
        "",
        "```",
        cli.get_help(ctx).replace("Usage: regcollect", "Usage: regcollect", 1),
        "```",
    ]
    out += _commands(cli, ctx, "")
    return "\n".join(out) + "\n"


def _commands(group: click.Group, ctx: click.Context, prefix: str) -> list[str]:
    """Each command, and each command of a group (`check remote`), in name order."""
    out: list[str] = []
    listed = dict(group.commands)
    if group is cli:
        from regcollect.watchcmd import watch  # `regcollect local watch`, routed by the local command

        listed["local watch"] = watch
    for name in sorted(listed):
        cmd = listed[name]
        full = f"{prefix}{name}"
        sub = click.Context(cmd, info_name=name, parent=ctx)
        out += [
            "",
            f"## regcollect {full}",
            "",
            f"Usage: `regcollect {full} {' '.join(cmd.collect_usage_pieces(sub))}`",
        ]
        out += ["", inspect.cleandoc(cmd.help or ""), ""]
        opts = [p for p in cmd.params if isinstance(p, click.Option)]
        if opts:
            out += ["| option | meaning |", "|---|---|"]
            out += [_option_row(p) for p in opts]
            out.append("| `-h`, `--help` | Show the help and exit. |")
        if isinstance(cmd, click.Group):
            out += _commands(cmd, sub, f"{full} ")
    return out


if __name__ == "__main__":
    print(render(), end="")
