"""The synthetic demo brand behind ``siyu demo``; docs/demo-brand.md describes what it holds."""

from siyu.demo.build import DemoSummary, build_demo
from siyu.demo.parameters import DEMO_PARAMETERS, DemoParameters

__all__ = ["DEMO_PARAMETERS", "DemoParameters", "DemoSummary", "build_demo"]
