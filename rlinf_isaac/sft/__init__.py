"""Supervised finetuning: LeRobot demonstration datasets for flow-matching behaviour cloning."""

from rlinf_isaac.sft.dataset import DatasetFormatError, LeRobotDataset, decode_video

__all__ = ["LeRobotDataset", "DatasetFormatError", "decode_video"]
