import unittest

from greet import greet


class GreetTest(unittest.TestCase):
    def test_greet(self) -> None:
        self.assertEqual(greet("flowctl"), "hello, flowctl!")


if __name__ == "__main__":
    unittest.main()
