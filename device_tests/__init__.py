"""slfm.device_tests"""
