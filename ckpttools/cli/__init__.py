"""The ``ckpttools`` command line: a click group whose commands wrap library calls.

Library errors (``CkptError``) are translated here, once: one ``Error:`` line on
stderr and the error's exit code; ``--debug`` shows the traceback instead. Ctrl-C
ends any command with exit code 130 (outputs are written atomically, so nothing
partial is left), and a mistyped command gets the closest names.
"""

from __future__ import annotations

import difflib
import importlib
import sys

import click

from .. import __version__
from ..errors import EXIT_INTERNAL, EXIT_INTERRUPTED, CkptError


class _Group(click.Group):
    """Commands load on first use (click's "lazy subcommands"), so `ls` never pays for TensorFlow-side imports."""

    lazy_commands = {
        "ls": "ckpttools.cli.ls:ls",
        "extract": "ckpttools.cli.extract:extract",
        "diff": "ckpttools.cli.diff:diff_command",
        "graph": "ckpttools.cli.graph:graph",
        "train": "ckpttools.cli.train:train",
        "eval": "ckpttools.cli.evaluate:evaluate",
        "transfer": "ckpttools.cli.transfer:transfer",
        "verify": "ckpttools.cli.verify:verify_command",
        "doctor": "ckpttools.cli.doctor:doctor_command",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = self.lazy_commands.get(name)
        if target is None:
            return super().get_command(ctx, name)
        module, attribute = target.split(":")
        return getattr(importlib.import_module(module), attribute)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["ckpttools.argv"] = list(args)  # `train --cluster local` runs this command line once per task
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple:
        """click's lookup, with "did you mean" for a mistyped command."""
        name = click.utils.make_str(args[0]) if args else None
        if name is not None and not name.startswith("-") and self.get_command(ctx, name) is None:
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=3, cutoff=0.6)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            ctx.fail(f"No such command '{name}'.{hint} (commands: {', '.join(self.list_commands(ctx))})")
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            if ctx.params.get("debug"):
                raise
            _interrupted()
        except CkptError as exc:
            if ctx.params.get("debug"):
                raise
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:
            sys.stderr.close()  # reader went away (`| head`): not an error
            ctx.exit(0)
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            click.echo(f"Error: internal error: {type(exc).__name__}: {exc} (run with --debug for details)", err=True)
            ctx.exit(EXIT_INTERNAL)


def _interrupted() -> None:
    """Ctrl-C: one line on stderr and exit 130 (the shell's convention), never click's "Aborted!" and 1."""
    try:
        sys.stderr.write("Interrupted.\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    sys.exit(EXIT_INTERRUPTED)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="ckpttools")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
def main(debug: bool) -> None:
    """Look inside TensorFlow checkpoints and carry their weights into new models.

    \b
    Examples:
      ckpttools ls model.ckpt-20000
      ckpttools ls runs/cnn --scopes 'conv_block[1-3]' --tree
    \b
    Exit codes: 0 ok, 1 inputs differ (diff) or cannot be matched (doctor),
    2 usage error, 3 not found, 4 bad or corrupt data (verify: not intact),
    5 output error, 6 missing dependency, 7 transfer plan error, 8 a distributed
    training task failed, 70 internal error, 130 interrupted (Ctrl-C).
    """

