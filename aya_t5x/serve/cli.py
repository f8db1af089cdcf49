r"""The server's command line: load a checkpoint, batch, serve, shut down.

  python -m aya_t5x.serve --checkpoint=HF_DIR
  python -m aya_t5x.serve --checkpoint=/run/checkpoint_400 \
      --gin_file=gin/models/mt5_xxl.gin [--gin.NUM_PARTITIONS=...] \
      [--host=127.0.0.1] [--port=8000] [--model_name=NAME]

A Hugging Face folder (config.json, safetensors, spiece.model) needs no gin
file: the architecture and vocabulary come from the folder. Our checkpoints
and upstream T5X's need the model gin (MODEL and VOCABULARY), as for
`aya_t5x.infer`. `--port=0` takes a free port; the first line printed says
which. SIGTERM or Ctrl-C stops accepting, answers the requests in flight and
queued, then exits 0.
"""

import argparse
import dataclasses
import os
import signal
import socket
import sys
from typing import Sequence

import gin

from aya_t5x import architecture
from aya_t5x import decoding
from aya_t5x import gin_utils
from aya_t5x import inference
from aya_t5x import model as model_lib
from aya_t5x import partitioning
from aya_t5x import startup
from aya_t5x import vocabularies
from aya_t5x.serve import app as app_lib
from aya_t5x.serve import engine as engine_lib
from aya_t5x.serve import protocol


@gin.configurable
def served_model(model: model_lib.EncoderDecoderModel = gin.REQUIRED,
                 vocabulary=gin.REQUIRED):
  """The MODEL and VOCABULARY macros of the model gin (gin/runs/serve.gin)."""
  return model, vocabulary


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="python -m aya_t5x.serve",
                                   allow_abbrev=False)
  parser.add_argument("--checkpoint", required=True,
                      help="checkpoint_N folder (ours or T5X) or HF folder")
  parser.add_argument("--host", default="127.0.0.1")
  parser.add_argument("--port", type=int, default=8000)
  parser.add_argument("--model_name", default=None,
                      help="the `model` clients ask for (default: the "
                      "checkpoint folder's name)")
  parser.add_argument("--num_partitions", type=int, default=1,
                      help="size of the mesh's model axis")
  limits, engine = protocol.Limits(), engine_lib.EngineConfig()
  for config in (limits, engine):
    for field in dataclasses.fields(config):
      parser.add_argument(f"--{field.name}", type=type(getattr(config,
                                                               field.name)),
                          default=getattr(config, field.name))
  parser.add_argument("--shutdown_timeout_s", type=float, default=60.0,
                      help="longest wait for requests in flight at SIGTERM")
  return parser


def _model_and_vocabulary(checkpoint: str, gin_flags: Sequence[str]):
  """From the model gin, or (none given) from a Hugging Face folder."""
  command_line = gin_utils.parse_command_line(
      [f for f in gin_flags if f != startup.VERBOSE_FLAG])
  if command_line.gin_files:
    # The checkpoint's own model.gin (if any) after the given gin files.
    found = architecture.find(checkpoint)
    extra = [found] if found and found not in command_line.gin_files else []
    gin_utils.parse_gin(command_line.gin_files + extra + ["runs/serve.gin"],
                        command_line.gin_bindings,
                        command_line.gin_search_paths)
    return served_model()  # pylint: disable=no-value-for-parameter
  # Imported here: the HF reader is only needed without a gin file.
  from aya_t5x.convert import hf  # pylint: disable=g-import-not-at-top
  if not os.path.isfile(os.path.join(checkpoint, hf.CONFIG_FILE)):
    raise gin_utils.UsageError(
        f"--checkpoint {checkpoint} is not a Hugging Face folder (no "
        f"{hf.CONFIG_FILE}); give the model's --gin_file (e.g. "
        "gin/models/mt5_xxl.gin).")
  config = hf.t5_config_from_hf(hf.read_config(checkpoint))
  spm = os.path.join(checkpoint, hf.SPM_FILE)
  return (model_lib.EncoderDecoderModel(config),
          vocabularies.sentencepiece_vocabulary(spm))


def build_service(args: argparse.Namespace, gin_flags: Sequence[str]
                  ) -> app_lib.Service:
  """Restores the checkpoint onto the mesh and starts the engine."""
  model, vocabulary = _model_and_vocabulary(args.checkpoint, gin_flags)
  limits = protocol.Limits(**{f.name: getattr(args, f.name)
                              for f in dataclasses.fields(protocol.Limits)})
  engine_config = engine_lib.EngineConfig(
      **{f.name: getattr(args, f.name)
         for f in dataclasses.fields(engine_lib.EngineConfig)})
  predictor = inference.Predictor.from_checkpoint(
      model, args.checkpoint, vocabulary,
      batch_size=engine_config.max_batch_rows,
      max_input_length=limits.max_input_tokens,
      partitioner=partitioning.Partitioner(
          partitioning.PartitioningConfig(args.num_partitions)))
  name = args.model_name or os.path.basename(
      os.path.normpath(args.checkpoint))
  return app_lib.Service(
      engine_lib.Engine(predictor, engine_config, limits.max_new_tokens),
      # Not Predictor.encode_input, which truncates: a prompt too long for
      # --max_input_tokens is refused (400), never cut.
      lambda text: list(vocabulary.encode(text)) + [decoding.EOS_ID],
      vocabulary.decode, name, limits)


def _listen(host: str, port: int) -> socket.socket:
  sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
  sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
  try:
    sock.bind((host, port))
  except OSError as e:
    raise gin_utils.UsageError(f"--host {host} --port {port}: {e}") from None
  return sock


def main(argv: Sequence[str]) -> None:
  import uvicorn  # pylint: disable=g-import-not-at-top
  args, gin_flags = _parser().parse_known_args(argv)
  with gin_utils.SetupPhase().usage_errors(ValueError, FileNotFoundError):
    startup.ready()
    service = build_service(args, gin_flags)
  sock = _listen(args.host, args.port)
  server = uvicorn.Server(uvicorn.Config(
      app_lib.build_app(service), log_level="warning",
      timeout_graceful_shutdown=args.shutdown_timeout_s))
  host, port = sock.getsockname()[:2]
  print(f"aya_t5x.serve: serving '{service.model_name}' on "
        f"http://{host}:{port}/v1", flush=True)
  # Uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the
  # signal with the handlers it found; these make that a clean exit 0.
  for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, lambda *_: None)
  server.run(sockets=[sock])
  print(f"aya_t5x.serve: stopped; {service.engine.stats()}", flush=True)


def console_main() -> None:
  status = gin_utils.exit_status(lambda: main(sys.argv[1:]))
  if status:
    sys.exit(status)
