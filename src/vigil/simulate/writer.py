"""Turn the generated batches into files: reference data, event stream, labels, feedback.

Ids are made here, once, from indices: transactions are numbered in order of their start,
logins in order of time, so the same seed always gives the same ids and bytes.

>>> EVENT_COLUMNS[:4]
('kind', 'event_id', 'transaction_id', 'timestamp')
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import polars as pl

from vigil.ingest.atm_stream import COLUMNS as ATM_STREAM_COLUMNS
from vigil.simulate.bank import SyntheticBank
from vigil.simulate.config import PATTERNS
from vigil.simulate.records import (
    CHANNEL_NAMES,
    DIRECTION_NAMES,
    TYPE_NAMES,
    LoginBatch,
    TxBatch,
)
from vigil.simulate.reference import BEHAVIOUR_COLUMNS
from vigil.simulate.standin import StandinOutcomes

EVENT_COLUMNS: tuple[str, ...] = (
    "kind",
    "event_id",
    "transaction_id",
    "timestamp",
    "type",
    "phase",
    "channel",
    "started_at",
    "amount",
    "currency",
    "card_id",
    "account_id",
    "user_id",
    "terminal_id",
    "counterparty_account",
    "counterparty_country",
    "direction",
    "ip",
    "device_id",
    "latitude",
    "longitude",
    "country",
    "standin",
    "success",
    "session_seconds",
)
ISO = "%Y-%m-%dT%H:%M:%SZ"
_UTC = pl.Datetime("us", "UTC")
_PHASES = ("start", "end", "single")


def _lookup(table: list[str] | tuple[str, ...], index: np.ndarray) -> pl.Series:
    """``table[index]`` as a string column; negative indices become null."""
    position = pl.Series(index.astype(np.int64)).cast(pl.UInt32, strict=False)
    return pl.Series(list(table), dtype=pl.String).gather(position)


def _numbered(prefix: str, index: np.ndarray) -> pl.Series:
    """``<prefix><index + 1>``; negative indices become null."""
    i = pl.Series(index.astype(np.int64))
    return pl.select(pl.when(i >= 0).then(pl.lit(prefix) + (i + 1).cast(pl.String))).to_series()


def _strings(values: np.ndarray) -> pl.Series:
    return pl.Series(values.tolist(), dtype=pl.String)


def _floats(values: np.ndarray) -> pl.Series:
    return pl.Series(values.astype(np.float64)).fill_nan(None)


def _times(seconds: np.ndarray) -> pl.Series:
    return pl.from_epoch(pl.Series(seconds.astype(np.int64)), time_unit="s").cast(_UTC)


def transaction_numbers(tx: TxBatch) -> np.ndarray:
    """1-based number of each transaction in order of start (ties: order of generation)."""
    order = np.lexsort((np.arange(len(tx)), tx.start))
    number = np.empty(len(tx), dtype=np.int64)
    number[order] = np.arange(1, len(tx) + 1)
    return number


def events_frame(
    bank: SyntheticBank, tx: TxBatch, logins: LoginBatch
) -> tuple[pl.DataFrame, pl.Series]:
    """All events sorted by time, plus each row's pattern name (null when legitimate).

    Rows are put in time order as integer indices first and every column is then built once,
    already in order: sorting the finished string columns would cost several times more.
    """
    code = bank.config.bank_code
    n_tx, n_login = len(tx), len(logins)
    starts = np.flatnonzero(tx.two_phase)
    n_rows = len(starts) + n_tx + n_login
    # Each row: a start event, a transaction's end/single event, or a login.
    row_tx = np.concatenate([starts, np.arange(n_tx), np.full(n_login, -1)])
    row_login = np.concatenate([np.full(len(starts) + n_tx, -1), np.arange(n_login)])
    is_start = np.zeros(n_rows, dtype=bool)
    is_start[: len(starts)] = True
    timestamp = np.concatenate([tx.start[starts], tx.end, logins.time])
    order = np.lexsort((np.arange(n_rows), timestamp))
    row_tx, row_login = row_tx[order], row_login[order]
    is_start, timestamp = is_start[order], timestamp[order]
    is_tx = row_tx >= 0
    ti, li = np.maximum(row_tx, 0), np.maximum(row_login, 0)

    def tx_col(values: np.ndarray, missing: object) -> np.ndarray:
        return np.where(is_tx, values[ti] if n_tx else missing, missing)

    def both_col(tx_values: np.ndarray, login_values: np.ndarray) -> np.ndarray:
        return np.concatenate([tx_values, login_values])[np.where(is_tx, row_tx, n_tx + row_login)]

    two_phase = tx_col(tx.two_phase, False)
    phase = np.where(~is_tx, -1, np.where(is_start, 0, np.where(two_phase, 1, 2)))
    number = tx_col(transaction_numbers(tx) - 1, -1)  # _numbered counts from 1
    login_order = np.lexsort((np.arange(n_login), logins.time))
    login_number = np.empty(n_login, dtype=np.int64)
    login_number[login_order] = np.arange(n_login)
    lnumber = np.where(is_tx, -1, login_number[li] if n_login else -1)
    started = np.where(phase == 1, tx_col(tx.start, -1), -1)
    amount = np.where(is_start, np.nan, tx_col(tx.amount, np.nan))
    account = tx_col(tx.account, -1)
    user = np.where(is_tx, account, logins.user[li] if n_login else -1)
    counterparty = tx_col(tx.counterparty, -1)
    tx_id = _numbered(f"t-{code}-", number)
    suffix = pl.Series(np.array(["", "-s", "-e", ""])[phase + 1])
    frame = pl.DataFrame(
        {
            "kind": _lookup(("transaction", "login"), (~is_tx).astype(np.int64)),
            "event_id": pl.select(
                pl.coalesce(tx_id + suffix, _numbered(f"l-{code}-", lnumber))
            ).to_series(),
            "transaction_id": tx_id,
            "timestamp": _times(timestamp),
            "type": _lookup(TYPE_NAMES, tx_col(tx.type, -1)),
            "phase": _lookup(_PHASES, phase),
            "channel": _lookup(CHANNEL_NAMES, tx_col(tx.channel, -1)),
            "started_at": _times(np.maximum(started, 0)).set(pl.Series(started < 0), None),
            "amount": _floats(amount),
            "currency": _lookup(("NGN",), np.where(is_tx, 0, -1)),
            "card_id": _numbered(f"c-{code}-", tx_col(tx.card, -1)),
            "account_id": _numbered(f"a-{code}-", account),
            "user_id": _numbered(f"u-{code}-", user),
            "terminal_id": _lookup(bank.atms.ids, tx_col(tx.atm, -1)),
            "counterparty_account": _lookup(bank.accounts.counterparty, counterparty),
            "counterparty_country": _lookup(bank.accounts.counterparty_country, counterparty),
            "direction": _lookup(DIRECTION_NAMES, tx_col(tx.direction, -1)),
            "ip": _strings(both_col(tx.ip, logins.ip)),
            "device_id": _strings(both_col(tx.device, logins.device)),
            "latitude": _floats(both_col(tx.latitude, logins.latitude)),
            "longitude": _floats(both_col(tx.longitude, logins.longitude)),
            "country": _strings(both_col(tx.country, logins.country)),
            "standin": pl.Series(tx_col(tx.standin, False)).set(pl.Series(~is_tx), None),
            "success": pl.Series(logins.success[li] if n_login else np.zeros(n_rows, bool)).set(
                pl.Series(is_tx), None
            ),
            "session_seconds": _floats(
                np.where(is_tx, np.nan, logins.session_seconds[li] if n_login else np.nan)
            ),
        }
    )
    pattern = _lookup(PATTERNS, both_col(tx.pattern, logins.pattern).astype(np.int64))
    return frame, pattern.alias("pattern")


def labels_frame(events: pl.DataFrame, pattern: pl.Series) -> pl.DataFrame:
    return (
        events.select("event_id", "transaction_id")
        .with_columns(pattern)
        .filter(pl.col("pattern").is_not_null())
    )


def feedback_frame(bank: SyntheticBank, tx: TxBatch, outcomes: StandinOutcomes) -> pl.DataFrame:
    """One settlement outcome per StandIn transaction, aimed at its end event."""
    code = bank.config.bank_code
    number = transaction_numbers(tx)[outcomes.transaction]
    order = np.lexsort((number, outcomes.time))
    frame = pl.DataFrame(
        {
            "target_event_id": [f"t-{code}-{k}-e" for k in number[order]],
            "label": np.where(outcomes.loss[order], "standin_loss", "standin_recovered").tolist(),
            "timestamp": _times(outcomes.time[order]),
            "source": ["settlement"] * len(order),
        },
        schema={
            "target_event_id": pl.String,
            "label": pl.String,
            "timestamp": _UTC,
            "source": pl.String,
        },
    )
    ids = [f"f-{code}-{k + 1}" for k in range(len(order))]
    return frame.select(pl.Series("event_id", ids, dtype=pl.String), pl.all()).with_columns(
        pl.col("timestamp").dt.strftime(ISO)
    )


def atm_stream_frame(events: pl.DataFrame) -> pl.DataFrame:
    """The ATM transaction stream layout: a start row, then an end row with end and amount.

    The columns come in the importer's order (:data:`vigil.ingest.atm_stream.COLUMNS`), so the
    layout is defined once and what we write is what ``vigil import events`` reads.
    """
    codes = {name: str(i) for i, name in enumerate(TYPE_NAMES)}
    atm = events.filter((pl.col("channel") == "atm") & pl.col("phase").is_in(["start", "end"]))
    is_end = pl.col("phase") == "end"
    columns = {
        "transaction_id": pl.col("transaction_id"),
        "number_id": pl.col("card_id"),
        "ATM_id": pl.col("terminal_id"),
        "transaction_type": pl.col("type").replace_strict(codes).cast(pl.Int64),
        "transaction_start": pl.when(is_end)
        .then(pl.col("started_at"))
        .otherwise(pl.col("timestamp"))
        .dt.strftime(ISO),
        "transaction_end": pl.when(is_end).then(pl.col("timestamp").dt.strftime(ISO)),
        "transaction_amount": pl.when(is_end).then(pl.col("amount")),
    }
    return atm.select(columns[name].alias(name) for name in ATM_STREAM_COLUMNS)


def reference_frames(bank: SyntheticBank) -> dict[str, pl.DataFrame]:
    """The ATM bank CSV layout (bank, atm, card and their links) plus users."""
    cfg, atms, cards, users = bank.config, bank.atms, bank.cards, bank.users
    code = cfg.bank_code
    n = bank.n
    ids = np.arange(1, n + 1)
    ref = bank.reference
    card = pl.DataFrame(
        {
            "number_id": [f"c-{code}-{i}" for i in ids],
            "client_id": [f"u-{code}-{i}" for i in ids],
            "expiration": cards.expiration,
            "CVC": cards.cvc,
            "loc_latitude": cards.home_lat,
            "loc_longitude": cards.home_lon,
            "extract_limit": cards.extract_limit,
            **{name: cards.behaviour[:, k] for k, name in enumerate(BEHAVIOUR_COLUMNS)},
        }
    )
    created = pl.from_epoch(pl.Series(users.created_at), time_unit="s").dt.strftime(ISO)
    return {
        "bank.csv": pl.DataFrame(
            {
                "name": [cfg.bank_name],
                "code": [code],
                "loc_latitude": [cfg.hq_latitude],
                "loc_longitude": [cfg.hq_longitude],
            }
        ),
        "atm.csv": pl.DataFrame(
            {
                "ATM_id": atms.ids,
                "loc_latitude": atms.latitude,
                "loc_longitude": atms.longitude,
                "city": [ref.cities[c] for c in atms.city],
                "country": ["Nigeria"] * len(atms),
            }
        ),
        "card.csv": card,
        "atm-bank-internal.csv": pl.DataFrame(
            {
                "code": code,
                "ATM_id": [a for a, i in zip(atms.ids, atms.internal, strict=True) if i],
            },
            schema={"code": pl.String, "ATM_id": pl.String},
        ),
        "atm-bank-external.csv": pl.DataFrame(
            {
                "code": code,
                "ATM_id": [a for a, i in zip(atms.ids, atms.internal, strict=True) if not i],
            },
            schema={"code": pl.String, "ATM_id": pl.String},
        ),
        "card-bank.csv": pl.DataFrame({"code": code, "number_id": card["number_id"]}),
        "users.csv": pl.DataFrame(
            {
                "user_id": card["client_id"],
                "created_at": created,
                "country": ["NG"] * n,
                "loc_latitude": cards.home_lat,
                "loc_longitude": cards.home_lon,
                "email": users.email,
                "phone": users.phone,
            }
        ),
    }


def events_for_csv(events: pl.DataFrame) -> pl.DataFrame:
    """Timestamps as ISO-8601 with a Z, as the CSV convention asks."""
    return events.with_columns(pl.col("timestamp", "started_at").dt.strftime(ISO))


def write_all(out_dir: Path, frames: Mapping[str, pl.DataFrame]) -> dict[str, Path]:
    """Write every frame, then move them into ``out_dir`` together: no half-written folder.

    Files go to a staging folder beside the outputs first; only when all are written are they
    renamed into place (a rename within one file system either happens or does not).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".vigil-generate-", dir=out_dir))
    try:
        for name, frame in frames.items():
            target = staging / name
            if name.endswith(".parquet"):
                frame.write_parquet(target, compression="zstd", statistics=True)
            else:
                frame.write_csv(target, float_precision=None, null_value="")
        paths = {}
        for name in frames:
            os.replace(staging / name, out_dir / name)
            paths[name] = out_dir / name
        return paths
    finally:
        shutil.rmtree(staging, ignore_errors=True)
