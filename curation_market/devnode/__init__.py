"""devnode"""
