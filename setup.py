"""Package build for churn_nb: metadata and requirements come from settings.ini (nbdev)."""
from configparser import ConfigParser
import setuptools, shlex

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

licenses = {'apache2': ('Apache Software License 2.0', 'OSI Approved :: Apache Software License')}
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']
lic = licenses[cfg['license']]
requirements = shlex.split(cfg.get('requirements', ''))
dev_requirements = shlex.split(cfg.get('dev_requirements', ''))
# The scheduled notebooks ship inside the package (as churn_nb/scheduled) so that `churn-nb run` works after `pip install`,
# and the dashboard's Voila app (notebooks/app) as churn_nb/app so that `churn-nb dashboard` does.
packages = setuptools.find_packages(include=['churn_nb', 'churn_nb.*']) + ['churn_nb.scheduled', 'churn_nb.app']

setuptools.setup(
    name=cfg['lib_name'], version=cfg['version'], description=cfg['description'],
    long_description=open('README.md', encoding='utf-8').read(), long_description_content_type='text/markdown',
    author=cfg['author'], author_email=cfg['author_email'], license=lic[0],
    classifiers=['Development Status :: ' + statuses[int(cfg['status'])], 'Intended Audience :: ' + cfg['audience'],
                 'License :: ' + lic[1], 'Natural Language :: ' + cfg['language'], 'Programming Language :: Python :: 3.11'],
    url=cfg['git_url'], packages=packages, package_dir={'churn_nb.scheduled': 'scheduled', 'churn_nb.app': 'notebooks/app'},
    package_data={'churn_nb': ['sample/*.csv.gz', 'sample/LICENSE', 'sample/NOTICE', 'text/data/*.csv', 'text/data/*.csv.gz', 'text/data/VADER_LICENSE.txt', 'text/data/README.md', 'text/static/*', 'text/classifier/*'], 'churn_nb.scheduled': ['*.ipynb', '*.yml'], 'churn_nb.app': ['*.ipynb', 'share/voila/templates/churn_nb/*']},
    include_package_data=False, install_requires=requirements, extras_require={'dev': dev_requirements},
    python_requires='>=' + cfg['min_python'], zip_safe=False,
    entry_points={'console_scripts': cfg['console_scripts'].split(), 'nbdev': [f'{cfg["lib_path"]}={cfg["lib_path"]}._modidx:d']},
)
