"""The ``ckpttools`` command line: a click group whose commands wrap library calls.

Library errors (``CkptError``) are translated here, once: one ``Error:`` line on
stderr and the error's exit code; ``--debug`` shows the traceback instead. Ctrl-C
ends any command with exit code 130 (outputs are written atomically, so nothing
partial is left), and a mistyped command gets the closest names.
"""

from __future__ import annotations

import importlib
import sys

import click

from .. import __version__
from ..errors import EXIT_INTERNAL, EXIT_INTERRUPTED, CkptError, bounded
from ..storage.sources import redact

MESSAGE_LIMIT = 1000  # an error is one line: whatever input it quotes, never pages of it


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
        "rewrite": "ckpttools.cli.rewrite:rewrite_command",
        "show": "ckpttools.cli.show:show",
        "verify": "ckpttools.cli.verify:verify_command",
        "doctor": "ckpttools.cli.doctor:doctor_command",
    }

    # The first line of each command's help, so `ckpttools --help` lists the commands without importing
    # their modules (which costs more than an `ls`). tests/test_cli_help.py checks them against the commands;
    # a command missing here is imported for its help, as before.
    summaries = {
        "diff": "Compare two checkpoints (or .npz/.safetensors/Keras files) variable by variable.",
        "doctor": "Say why SOURCE will not restore into TARGET, and how to make it restore.",
        "eval": "Evaluate a trained run: accuracy, loss, per-class accuracy, confusion matrix.",
        "extract": "Write the selected variables of a checkpoint to an .npz or .safetensors file.",
        "graph": "Show the nodes of a TensorFlow graph: name, op, inputs, device, attributes.",
        "ls": "List the variables in a checkpoint: name, dtype, shape, parameters, bytes.",
        "rewrite": "Write a changed copy of a checkpoint, without TensorFlow, in one streaming pass.",
        "show": "Print the values of tensors in a checkpoint: name, dtype, shape, then the values.",
        "train": "Train a model and write checkpoints, TensorBoard summaries and run.json to RUN.",
        "transfer": "Start a new model from selected layers of a checkpoint, then fine-tune it.",
        "verify": "Check that a checkpoint is intact, without TensorFlow, and say what is wrong.",
    }

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's own listing, shortened the same way, from ``summaries`` where there is one."""
        names = self.list_commands(ctx)
        commands = [(name, self._help_command(ctx, name)) for name in names]
        commands = [(name, command) for name, command in commands if command is not None and not command.hidden]
        if not commands:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in commands)
        with formatter.section("Commands"):
            formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in commands])

    def _help_command(self, ctx: click.Context, name: str) -> click.Command | None:
        summary = self.summaries.get(name)
        return click.Command(name, help=summary) if summary else self.get_command(ctx, name)

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
            import difflib  # only for a mistyped command

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
            click.echo(f"Error: {bounded(redact(str(exc)), MESSAGE_LIMIT)}", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:
            sys.stderr.close()  # reader went away (`| head`): not an error
            ctx.exit(0)
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            detail = bounded(f"{type(exc).__name__}: {redact(str(exc))}", MESSAGE_LIMIT)
            click.echo(f"Error: internal error: {detail} (run with --debug for details)", err=True)
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
    training task failed, 9 remote storage error, 70 internal error,
    130 interrupted (Ctrl-C).
    """

