from configparser import ConfigParser
import setuptools
from packaging.version import parse

assert parse(setuptools.__version__) >= parse('36.2')
cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

requirements = cfg.get('requirements', '').split()
dev_requirements = cfg.get('dev_requirements', '').split()
console_scripts = cfg.get('console_scripts', '').split()

setuptools.setup(
    name=cfg['lib_name'], version=cfg['version'], description=cfg['description'],
    long_description=open('README.md', encoding='utf-8').read(), long_description_content_type='text/markdown',
    author=cfg['author'], author_email=cfg['author_email'], license='Apache-2.0', url=cfg['git_url'],
    packages=setuptools.find_packages(include=['gesthand', 'gesthand.*']), include_package_data=True,
    python_requires='>=' + cfg['min_python'], install_requires=requirements,
    extras_require={'dev': dev_requirements, 'mano-convert': ['chumpy-fixed==0.71']},
    entry_points={'console_scripts': console_scripts, 'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    zip_safe=False)
