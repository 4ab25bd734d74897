"""The Gradio app (minimal page: bank status). Binds 127.0.0.1 unless told otherwise."""
from __future__ import annotations

import sys


def check_exposure(host: str, auth: str | None) -> tuple[str, str] | None:
    """A non-local bind needs credentials; returns (user, pass) or None."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        if not auth or ":" not in auth:
            raise SystemExit("vigil: error: --host other than 127.0.0.1 requires --auth user:pass (or VIGIL_AUTH)")
        print(f"vigil: warning: the UI is reachable from the network on {host}; protect it", file=sys.stderr)
    if auth:
        user, _, pw = auth.partition(":")
        return user, pw
    return None


def build(bank_dir: str):
    import gradio as gr

    from memory.bank import BankError, MemoryBank

    def status() -> str:
        try:
            with MemoryBank(bank_dir, readonly=True) as bank:
                return f"**{bank.count()} memories** in `{bank_dir}`, {bank.bytes_on_disk() / 1e6:.1f} MB"
        except BankError as e:
            return f"No memories yet: {e}"

    with gr.Blocks(title="Vigil") as demo:
        gr.Markdown("# Vigil\nStreaming video assistant. Ingest with `python app.py ingest SOURCE --bank DIR`.")
        info = gr.Markdown(status())
        timer = gr.Timer(2.0)
        timer.tick(status, outputs=info)
    return demo


def launch(args) -> int:
    auth = check_exposure(args.host, args.auth)
    demo = build(args.bank)
    demo.launch(server_name=args.host, server_port=args.port, auth=auth)
    return 0
