"""curator"""
