# Copyright (C) 2022 Alteryx, Inc. All rights reserved.
#
# Licensed under the ALTERYX SDK AND API LICENSE AGREEMENT;
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#    https://www.alteryx.com/alteryx-sdk-and-api-license-agreement
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""Alteryx Designer Plugin implementations."""
from setuptools import find_packages, setup

PACKAGE_NAME = "ayx_plugins"

MAJOR = 1
MINOR = 0
MICRO = 0
VERSION = f"{MAJOR}.{MINOR}.{MICRO}"

SUMMARY = (__doc__ or "").split("\n")

if __name__ == "__main__":
    setup(
        name=PACKAGE_NAME,
        version=VERSION,
        description=SUMMARY,
        long_description_content_type="text/markdown",
        platforms=["Windows"],
        author="tableau-publisher",
        packages=find_packages(
            exclude=["examples", "*.tests", "*.tests.*", "tests.*", "tests"]
        ),
        # The library next to the binding, where it looks first (put there by sync-binding.sh).
        package_data={"ayx_plugins": ["*tableau_publisher.dll", "*tableau_publisher.so", "*tableau_publisher.dylib"]},
        include_package_data=True,
    )
