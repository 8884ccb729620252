"""Drives aiontfy, the ntfy client library behind Home Assistant's ntfy integration,
against a running tidings server: checks access (`GET /{topic}/auth`), subscribes over
WebSocket, publishes through `POST /` and waits for the message to arrive.

Usage: aiontfy_check.py URL TOPIC (--token TOKEN | --user NAME --password PASSWORD)

Prints one line `OK <message id>` when the published message came back through the
subscription; anything else exits non-zero with the reason.
"""

import argparse
import asyncio
import sys

from aiohttp import ClientSession
from aiontfy import Message, Ntfy

WAIT_SECONDS = 10
# The whole check ends by itself, so whoever runs it needs no deadline of its own.
TOTAL_SECONDS = 30


async def check(args: argparse.Namespace) -> str:
    async with ClientSession() as session:
        ntfy = Ntfy(
            args.url,
            session,
            username=args.user,
            password=args.password,
            token=args.token,
        )
        if not await ntfy.can_subscribe([args.topic]):
            raise SystemExit("can_subscribe said no")
        opened = asyncio.Event()
        received: asyncio.Queue = asyncio.Queue()

        def on_event(notification) -> None:
            # The first event of a subscription is `open`: from then on nothing is missed.
            if notification.event == "open":
                opened.set()
            elif notification.event == "message":
                received.put_nowait(notification)

        listener = asyncio.create_task(ntfy.subscribe([args.topic], on_event))
        try:
            opened_or_failed = asyncio.ensure_future(opened.wait())
            done, _ = await asyncio.wait(
                {opened_or_failed, listener},
                timeout=WAIT_SECONDS,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if listener in done:
                listener.result()
                raise SystemExit("the subscription ended before it opened")
            if not done:
                raise SystemExit("the subscription did not open")
            text = f"hello from aiontfy ({'token' if args.token else 'password'})"
            sent = await ntfy.publish(
                Message(topic=args.topic, message=text, title="aiontfy", tags=["check"])
            )
            got = await asyncio.wait_for(received.get(), WAIT_SECONDS)
            if (got.id, got.message, got.title) != (sent.id, text, "aiontfy"):
                raise SystemExit(f"received {got!r}, published {sent!r}")
            return got.id
        finally:
            listener.cancel()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("topic")
    parser.add_argument("--token")
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()
    if (args.token is None) == (args.user is None or args.password is None):
        parser.error("give --token, or --user and --password")
    message_id = asyncio.run(asyncio.wait_for(check(args), TOTAL_SECONDS))
    print(f"OK {message_id}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
