"""The one live feed the panel and the dashboard read (:class:`LiveFeed`), and what it hands out."""

from __future__ import annotations

from .cluster import ClusterUpdate, PrefixStats, WorkerReading
from .live import LiveFeed
from .records import FeedCursor, FeedFigures, FeedGap, FeedMarker, FeedSample, FeedUpdate

__all__ = ["ClusterUpdate", "FeedCursor", "FeedFigures", "FeedGap", "FeedMarker", "FeedSample", "FeedUpdate", "LiveFeed", "PrefixStats", "WorkerReading"]
