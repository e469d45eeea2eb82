"""Word lists per language, for the offline summariser.

For each supported language (English, German, French, Spanish, Italian,
Portuguese, Dutch):

- ``stopwords``: function words and filler that name no topic (never a tag);
- ``connectives``: words (or phrases, "sin embargo") that open a sentence leaning on the one before
  ("But", "However", "Also"): such a sentence reads wrong out of context;
- ``pronouns``: sentence openers that refer back ("He", "This", "They"):
  without the sentence before, the reader cannot tell to what;
- ``verbs``: common verb forms, which make poor tags on their own ("open",
  "says"); the English list is the longest.

Everything is lower case, apostrophes as ``'`` (callers fold U+2019 first).
Written by hand from common usage; small on purpose: a word missing here is
a missed filter, not a wrong answer.
"""

from __future__ import annotations

from dataclasses import dataclass


def _words(text: str) -> frozenset[str]:
    # "sin_embargo": a phrase of several words ("sin embargo").
    return frozenset(word.replace("_", " ") for word in text.split())


@dataclass(frozen=True)
class Lexicon:
    stopwords: frozenset[str]
    connectives: frozenset[str]
    pronouns: frozenset[str]
    verbs: frozenset[str]


_EN = Lexicon(
    stopwords=_words("""
a about above across after afterwards again against ago ahead all almost alone along already also
although always am among amongst an and another any anybody anyone anything anyway anywhere are
aren't around as ask asked asks at away back be became because become becomes becoming been
before beforehand behind being below beside besides best better between beyond both but by came
can can't cannot could couldn't did didn't do does doesn't doing don't done down during each
either else elsewhere enough especially even ever every everybody everyone everything
everywhere except far few fifth first five for former formerly four from further furthermore
get gets getting give given gives go goes going gone got had hadn't has hasn't have haven't
having he he'd he'll he's hence her here here's hers herself him himself his how how's however
i i'd i'll i'm i've if in indeed instead into is isn't it it's its itself just keep kept know
known knows last later latter least less let let's like likely made make makes making many may
maybe me meanwhile might mine more moreover most mostly much must mustn't my myself namely
near nearly need needs neither never nevertheless next nine no nobody none nor not nothing now
nowhere of off often on once one only onto or other others otherwise ought our ours ourselves
out over overall own per perhaps put quite rather really said same saw say saying says second
see seem seemed seeming seems seen several shall shan't she she'd she'll she's should
shouldn't since six so some somebody someone something sometime sometimes somewhere soon still
such take taken takes ten than that that's the their theirs them themselves then thence there
there's thereafter thereby therefore therein these they they'd they'll they're they've thing
things third this those though three through throughout thus to together too took toward
towards two under unless until up upon us use used uses using very via was wasn't way ways we
we'd we'll we're we've well went were weren't what what's whatever when whence whenever where
where's whereas whereby wherever whether which while who who's whoever whole whom whose why
why's will with within without won't would wouldn't yes yet you you'd you'll you're you've
your yours yourself yourselves come comes coming want wants wanted year years day days time
times lot lots kind sort part new old good great big small high low long little right left
told tell tells think thinks thought found find finds went able going look looks looked
mr mrs ms dr per cent percent also via etc simple easy hard sure clear different certain
entire various similar important possible true fine nice bad worse worst huge tiny end front
side
"""),
    connectives=_words("""
and but yet however also so then still moreover furthermore meanwhile instead besides thus
therefore nevertheless nonetheless plus or nor although though because otherwise hence indeed
likewise similarly additionally consequently accordingly afterwards anyway besides whereas
while even again further later finally firstly secondly lastly overall rather conversely
notably specifically instead regardless
"""),
    pronouns=_words("""
he she it they this these those that his her its their him them such
"""),
    verbs=_words("""
open opens opened opening close closes closed make makes made take takes took taken give gives
gave given get gets got go goes went run runs ran say says said tell tells told show shows
showed shown use uses used try tries tried keep keeps kept start starts started begin begins
began call calls called ask asks asked need needs needed feel feels felt become becomes became
leave leaves left put puts mean means meant let lets seem seems seemed help helps helped turn
turns turned move moves moved live lives lived believe believes believed bring brings brought
happen happens happened write writes wrote written provide provides provided sit sits sat stand
stands stood lose loses lost pay pays paid meet meets met include includes included continue
continues continued set sets learn learns learned change changes changed lead leads led
understand understands understood watch watches watched follow follows followed stop stops
stopped create creates created speak speaks spoke read reads allow allows allowed add adds
added spend spends spent grow grows grew grown offer offers offered remember remembers
remembered love loves loved consider considers considered appear appears appeared buy buys
bought wait waits waited serve serves served die dies died send sends sent expect expects
expected build builds built stay stays stayed fall falls fell cut cuts reach reaches reached
kill kills killed remain remains remained suggest suggests suggested raise raises raised pass
passes passed sell sells sold require requires required report reports reported decide decides
decided pull pulls pulled break breaks broke broken hold holds held win wins won want wants
wanted look looks looked come comes came find finds found think thinks thought know knows knew
see sees saw seen work works worked play plays played hear hears heard agree agrees agreed
announce announces announced claim claims claimed note notes noted add adds explain explains
explained describe describes described argue argues argued plan plans planned hope hopes hoped
launch launches launched release releases released
"""),
)

_DE = Lexicon(
    stopwords=_words("""
aber alle allem allen aller alles als also am an ander andere anderem anderen anderer anderes
anderm andern anderr anders auch auf aus bei beim bin bis bist da dabei dadurch dafür dagegen
daher dahin damals damit danach daneben dann daran darauf daraus darf darfst darin darüber
darum darunter das dass daß davon davor dazu dein deine deinem deinen deiner deines dem demnach
den denen denn dennoch der deren des deshalb dessen dich die dies diese diesem diesen dieser
dieses dir doch dort du durch ebenso ein eine einem einen einer eines einige einigen einiger
einiges einmal er es etwa etwas euch euer eure eurem euren eurer eures für gab gegen gewesen
geworden gibt ging habe haben hat hatte hatten hier hin hinter ich ihm ihn ihnen ihr ihre ihrem
ihren ihrer ihres im immer in indem ins ist ja jede jedem jeden jeder jedes jedoch jene jenem
jenen jener jenes jetzt kann kannst kein keine keinem keinen keiner keines können könnte machen
man manche manchem manchen mancher manches mehr mein meine meinem meinen meiner meines mich mir
mit muss musste müssen nach nachdem nein nicht nichts noch nun nur ob oder ohne schon sehr sein
seine seinem seinen seiner seines seit sich sie sind so solche solchem solchen solcher solches
soll sollte sondern sonst sowie über um und uns unser unsere unserem unseren unserer unseres
unter viel viele vom von vor während war waren warst was weg weil weiter welche welchem welchen
welcher welches wenn wer werde werden wie wieder will wir wird wirst wo wollen wollte würde
würden zu zum zur zwar zwischen sagte sagt heute jahr jahre jahren neue neuen neuer neues
ersten erste drei zwei mal bereits rund etwa sei seien wurde wurden worden beim lassen ließ
gut große großen kurz lang denen dazu vielleicht ganz gar eben wohl eigentlich
"""),
    connectives=_words("""
und aber doch jedoch auch außerdem zudem dennoch trotzdem allerdings also daher deshalb
deswegen darum folglich somit sondern oder dann danach ferner überdies zwar stattdessen
immerhin sogar schließlich
"""),
    pronouns=_words("""
er sie es dies diese dieser dieses diesen diesem sein seine seiner ihr ihre ihrer ihm
ihn ihnen dort
"""),
    verbs=_words("""
sagte sagt sagen machen macht machte geben gibt gab gehen geht ging kommen kommt kam sehen
sieht sah lassen lässt ließ stehen steht stand finden findet fand bleiben bleibt blieb
"""),
)

_FR = Lexicon(
    stopwords=_words("""
a à ai aie aient aies ait alors as au aucun aucune aujourd'hui auquel aura aurai auraient
aurais aurait auras aurez auriez aurions aurons auront aussi autre autres aux avaient avais
avait avant avec avez aviez avions avoir avons ayant ayez ayons c' c ça car ce ceci cela celle
celles celui cependant ces cet cette ceux chaque chez ci comme comment d' d dans de des depuis
deux dont du elle elles en encore entre es est et étaient étais était étant été être eu eue
eues eurent eus eut eux fait faire fois font furent fut hors il ils j' j je jusqu jusque l' l
la là le les leur leurs lors lui m' m ma mais me même mes moi moins mon n' n ne ni non nos
notre nous on ont ou où par parce pas peu peut plus pour pourquoi qu' qu quand que quel quelle
quelles quels qui s' s sa sans se selon ses seulement si sien son sont sous soyez sa sur t' t
ta tandis te tes toi ton tous tout toute toutes très trop tu un une vers voici voilà vos votre
vous y déjà ainsi après aussi bien donc dit selon trois ans année années leurs tout toutefois
nouveau nouvelle nouveaux premier première fin lors afin peuvent doit doivent pourrait sera
seront serait serait avait
"""),
    connectives=_words("""
et mais cependant pourtant toutefois aussi ainsi donc alors puis ensuite enfin or néanmoins
d'ailleurs également en_outre de_plus par_ailleurs sinon car
"""),
    pronouns=_words("""
il elle ils elles ce cela ceci cette ces celui celle ceux celles son sa ses leur leurs lui
"""),
    verbs=_words("""
dit dire fait faire est sont était a ont avait peut peuvent doit va vont aller prend prendre
donne donner met mettre voit voir
"""),
)

_ES = Lexicon(
    stopwords=_words("""
a al algo algunas algunos ante antes como con contra cual cuando de del desde donde durante e
el él ella ellas ellos en entre era eran es esa esas ese eso esos esta está están estaba
estaban estar este esto estos fue fueron ha había habían han hasta hay la las le les lo los
más me mi mis mucho muchos muy nada ni no nos nosotros o os otra otras otro otros para pero
poco por porque que qué quien quienes se sea ser si sí sido sin sobre son su sus también
tanto te tiene tienen todo todos tu tus un una unas uno unos usted ustedes y ya yo año años
dijo dice según tras cada puede pueden hace hacer así entonces aunque sino mismo misma ahora
aún donde dos tres primer primera nuevo nueva nuevos nuevas gran grandes además sin embargo
esto ello cuyo cuya será serán sería podría debe deben
"""),
    connectives=_words("""
y pero sin_embargo además también así entonces luego aunque sino o ni asimismo igualmente
incluso tampoco después finalmente por_tanto por_eso
"""),
    pronouns=_words("""
él ella ellos ellas esto eso este esta estos estas ese esa esos esas su sus
"""),
    verbs=_words("""
dijo dice decir hace hacer hizo tiene tienen tener va van ir puede pueden poder da dar ver ve
"""),
)

_IT = Lexicon(
    stopwords=_words("""
a ad agli ai al alla alle allo anche altri altro anni anno c' che chi ci come con cosa cui da
dai dal dalla dalle degli dei del della delle dello di dopo due e è ed era erano essere gli
ha hanno ho i il in io la le lei li lo loro lui ma mentre mi molto ne negli nei nel nella nelle
nello noi non nostro o ogni per perché più poi proprio può quale quando quanto quella quelle
quelli quello questa queste questi questo qui se sempre senza si sia siamo sono sta stata stati
stato su sua sue sui sul sulla suo suoi tra tre tutti tutto un una uno vi voi già così ancora
ha detto dice fa fare essere stesso stessa nuovo nuova prima
"""),
    connectives=_words("""
e ma però tuttavia inoltre anche quindi dunque poi infine oppure o né invece comunque
pertanto eppure
"""),
    pronouns=_words("""
lui lei loro esso essa essi esse questo questa questi queste quello quella suo sua suoi sue
"""),
    verbs=_words("""
detto dice dire fa fare ha hanno è sono può possono va vanno
"""),
)

_PT = Lexicon(
    stopwords=_words("""
a à ao aos as às até com como da das de dela dele deles depois do dos e é ela elas ele eles em
entre era eram essa essas esse esses esta está estão estava este estes eu foi foram há isso
isto já lhe lhes mais mas me mesmo meu minha muito muitos na nas não nem no nos nós num numa o
os ou para pela pelas pelo pelos por porque quando que quem se sem ser seu seus sua suas também
te tem têm tinha um uma umas uns você vocês ano anos disse diz segundo após cada pode podem
fazer faz assim então embora ainda dois três primeiro primeira novo nova grande sobre
aqui ali lá aquele aquela aquilo coisa coisas vez vezes sempre nunca bem
"""),
    connectives=_words("""
e mas porém contudo todavia também além_disso assim então depois ou nem entretanto
portanto ainda finalmente
"""),
    pronouns=_words("""
ele ela eles elas isso isto este esta estes estas esse essa esses essas seu sua seus suas
"""),
    verbs=_words("""
disse diz dizer faz fazer fez tem têm ter vai vão ir pode podem dá dar ver vê
"""),
)

_NL = Lexicon(
    stopwords=_words("""
aan al alles als altijd andere ben bij daar dan dat de der deze die dit doch doen door dus een
eens en er ge geen geweest haar had heb hebben heeft hem het hier hij hoe hun iemand iets ik
in is ja je kan kon kunnen maar me meer men met mij mijn moet na naar niet niets nog nu of om
omdat onder ons ook op over reeds te tegen toch toen tot u uit uw van veel voor want waren was
wat werd wezen wie wil worden wordt zal ze zelf zich zij zijn zo zonder zou jaar jaren zegt
zei volgens nieuwe twee drie eerste wel
"""),
    connectives=_words("""
en maar toch echter ook bovendien dus daarom daarna dan of verder tevens evenwel
"""),
    pronouns=_words("""
hij zij ze dit dat deze zijn haar hun
"""),
    verbs=_words("""
zegt zei zeggen doet doen deed gaat gaan ging komt komen kwam heeft hebben
"""),
)

LEXICONS: dict[str, Lexicon] = {
    "en": _EN, "de": _DE, "fr": _FR, "es": _ES, "it": _IT, "pt": _PT, "nl": _NL,
}

# Every language's stopwords at once: for a text whose language is unknown,
# and to keep a stray English (or other) function word out of any tag.
ALL_STOPWORDS: frozenset[str] = frozenset().union(*(lex.stopwords for lex in LEXICONS.values()))


def lexicon(language: str | None) -> Lexicon:
    """The word lists of ``language`` (a primary subtag such as ``"de"``);
    English for an unknown or missing one (its lists are the fullest)."""
    return LEXICONS.get((language or "en").split("-")[0].lower(), _EN)
