"""Parses Prometheus text exposition (standard input) with prometheus_client's own
parser and prints its families as JSON: name, type, help, and every sample with its
labels. A text the parser refuses fails (exit status 1, its error on stderr)."""

import json
import sys

from prometheus_client.parser import text_string_to_metric_families

families = [
    {
        "name": family.name,
        "type": family.type,
        "help": family.documentation,
        "samples": [
            {"name": s.name, "labels": s.labels, "value": s.value}
            for s in family.samples
        ],
    }
    for family in text_string_to_metric_families(sys.stdin.read())
]
json.dump(families, sys.stdout)
